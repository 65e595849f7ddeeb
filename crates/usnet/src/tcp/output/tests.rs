//! Send-path decision tests (tcp_write_xmit, Nagle, cork, autocork, TSQ).
