//! iptables' command line (`iptables/iptables.c` `do_command4`, `xshared.c`, libxtables'
//! address and port parsers), for the filter table.
//!
//! [`parse_command`] takes the arguments after the program name, e.g.
//! `["-A", "INPUT", "-s", "10.0.0.0/8", "-p", "tcp", "--dport", "80", "-j", "REJECT",
//! "--reject-with", "tcp-reset"]`, and gives a [`Command`]; [`Command::apply`] runs it on a
//! [`FilterTable`].
//!
//! Supported, as iptables spells them (short and long forms, `--opt=value`, clustered flags
//! like `-nvL`, `!` before an option to negate it):
//!
//! * commands `-A`, `-I [num]`, `-R num`, `-D num|rule`, `-C`, `-F`, `-Z`, `-P`, `-L`, `-S`
//!   on the chains INPUT, FORWARD, OUTPUT;
//! * `-s`, `-d` (`a.b.c.d[/len|/mask]`, short forms like `10/8` as libxtables), `-p`
//!   (number, `all`, `tcp`, `udp`, `icmp`, ...), `-i`, `-o` (`+` wildcard), `-j ACCEPT |
//!   DROP | REJECT | RETURN`, `-m tcp|udp`, `--sport`/`--dport` (`port`, `lo:hi`, `:hi`,
//!   `lo:`), `--reject-with`;
//! * `-v`, `-n`, `-x`, `--line-numbers`, `-t filter`, `-w`, `-4`.
//!
//! Not supported, refused with a clear error: other tables (`nat` is not implemented yet),
//! user-defined chains (`-N`, `-X`, `-E`, jumps to chains), `-f`, `-c`, `-g`, other
//! matches and targets, several addresses in one `-s`/`-d`, host and service names.
//!
//! As in iptables, match options come after what loads them: `--dport` needs an earlier
//! `-p tcp|udp` (or `-m tcp|udp`), and `--reject-with` an earlier `-j REJECT`.

use std::fmt;
use std::io;
use std::net::Ipv4Addr;

use super::filter::{proto_by_name, IPPROTO_TCP, IPPROTO_UDP};
use super::{Chain, FilterTable, ListFormat, RejectWith, Rule, RuleError, Target};

/// One iptables command for the filter table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `-A chain rule`.
    Append {
        /// The chain.
        chain: Chain,
        /// The rule.
        rule: Rule,
    },
    /// `-I chain [pos] rule` (pos defaults to 1).
    Insert {
        /// The chain.
        chain: Chain,
        /// 1-based position the rule takes.
        pos: usize,
        /// The rule.
        rule: Rule,
    },
    /// `-R chain pos rule`.
    Replace {
        /// The chain.
        chain: Chain,
        /// 1-based position of the rule to replace.
        pos: usize,
        /// The new rule.
        rule: Rule,
    },
    /// `-D chain rule`: delete the first equal rule.
    Delete {
        /// The chain.
        chain: Chain,
        /// The rule to find.
        rule: Rule,
    },
    /// `-D chain pos`.
    DeleteNum {
        /// The chain.
        chain: Chain,
        /// 1-based position of the rule to delete.
        pos: usize,
    },
    /// `-C chain rule`: does the rule exist?
    Check {
        /// The chain.
        chain: Chain,
        /// The rule to find.
        rule: Rule,
    },
    /// `-F [chain]`.
    Flush {
        /// The chain, or all.
        chain: Option<Chain>,
    },
    /// `-Z [chain]`.
    Zero {
        /// The chain, or all.
        chain: Option<Chain>,
    },
    /// `-P chain ACCEPT|DROP`.
    Policy {
        /// The chain.
        chain: Chain,
        /// [`Target::Accept`] or [`Target::Drop`].
        target: Target,
    },
    /// `-L [chain]` with `-v`, `-x`, `--line-numbers` (always numeric).
    List {
        /// The chain, or all.
        chain: Option<Chain>,
        /// The listing flags.
        format: ListFormat,
    },
    /// `-S [chain]`.
    ListRules {
        /// The chain, or all.
        chain: Option<Chain>,
    },
}

impl Command {
    /// Run the command on `table`. Listings return their text; `-C` returns `NotFound`
    /// when the rule does not exist (iptables' exit status 1); other commands return an
    /// empty string.
    pub fn apply(self, table: &FilterTable) -> io::Result<String> {
        match self {
            Command::Append { chain, rule } => table.append(chain, rule),
            Command::Insert { chain, pos, rule } => table.insert(chain, pos, rule)?,
            Command::Replace { chain, pos, rule } => table.replace(chain, pos, rule)?,
            Command::Delete { chain, rule } => table.delete_matching(chain, &rule)?,
            Command::DeleteNum { chain, pos } => table.delete(chain, pos)?,
            Command::Check { chain, rule } => {
                if !table.check(chain, &rule) {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        "Bad rule (does a matching rule exist in that chain?)",
                    ));
                }
            }
            Command::Flush { chain } => table.flush(chain),
            Command::Zero { chain } => table.zero_chain(chain),
            Command::Policy { chain, target } => table.set_policy(chain, target)?,
            Command::List { chain, format } => return Ok(table.list_with(chain, format)),
            Command::ListRules { chain } => return Ok(table.list_rules_chain(chain)),
        }
        Ok(String::new())
    }
}

/// Why an iptables command line was refused. The `Display` text follows iptables' own
/// messages where it has one, naming the offending argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// No command (`-A`, `-L`, ...) was given.
    NoCommand,
    /// Two commands were given (`-A` with `-D`).
    MultipleCommands(char, char),
    /// An option nobody knows here.
    UnknownOption(String),
    /// A match or target option given before what loads it (`--dport` before `-p tcp`,
    /// `--reject-with` before `-j REJECT`): the option and what it needs.
    OptionNeeds(String, &'static str),
    /// An option given without its argument.
    MissingArgument(String),
    /// An argument that belongs to no option.
    BadArgument(String),
    /// An option given twice.
    DuplicateOption(String),
    /// A usage error in iptables' own words: a misplaced `!` (`multiple consecutive ! not
    /// allowed`), a command without its operands (`-P requires a chain and a policy`), an
    /// argument given to a flag.
    Usage(String),
    /// An option the command does not take (`-s` with `-L`).
    IllegalOption(String, char),
    /// Not INPUT, FORWARD or OUTPUT.
    UnknownChain(String),
    /// A table other than `filter`.
    UnsupportedTable(String),
    /// Something iptables has that this implementation does not.
    Unsupported(String),
    /// An unknown protocol name or number.
    UnknownProtocol(String),
    /// An address that is not a dotted quad.
    InvalidAddress(String),
    /// A bad prefix length or netmask.
    InvalidMask(String),
    /// A port that is not a number 0..=65535.
    InvalidPort(String),
    /// A rule number that is not a positive integer.
    InvalidRuleNumber(String),
    /// A target other than ACCEPT, DROP, REJECT, RETURN.
    UnknownTarget(String),
    /// A policy other than ACCEPT or DROP.
    BadPolicy(String),
    /// An unknown `--reject-with` type.
    UnknownRejectType(String),
    /// `-i` on OUTPUT or `-o` on INPUT.
    InterfaceNotValid(char, Chain),
    /// The rule itself is invalid.
    Rule(RuleError),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NoCommand => f.write_str("no command specified"),
            ParseError::MultipleCommands(a, b) => write!(f, "Cannot use -{a} with -{b}"),
            ParseError::UnknownOption(o) => write!(f, "unknown option \"{o}\""),
            ParseError::OptionNeeds(o, needs) => {
                write!(f, "unknown option \"{o}\": it needs {needs} before it")
            }
            ParseError::MissingArgument(o) => write!(f, "option \"{o}\" requires an argument"),
            ParseError::BadArgument(a) => write!(f, "Bad argument `{a}'"),
            ParseError::DuplicateOption(o) => write!(f, "multiple {o} flags not allowed"),
            ParseError::Usage(msg) => f.write_str(msg),
            ParseError::IllegalOption(o, c) => {
                write!(f, "Illegal option `{o}' with this command (-{c})")
            }
            ParseError::UnknownChain(c) => write!(
                f,
                "chain `{c}' does not exist in table filter (INPUT, FORWARD, OUTPUT)"
            ),
            ParseError::UnsupportedTable(t) => write!(
                f,
                "table `{t}' is not supported: only `filter' (nat is not implemented yet)"
            ),
            ParseError::Unsupported(what) => write!(f, "{what} is not supported"),
            ParseError::UnknownProtocol(p) => write!(f, "unknown protocol \"{p}\" specified"),
            ParseError::InvalidAddress(a) => write!(f, "host/network `{a}' not found"),
            ParseError::InvalidMask(m) => write!(f, "invalid mask `{m}' specified"),
            ParseError::InvalidPort(p) => write!(f, "invalid port/service `{p}' specified"),
            ParseError::InvalidRuleNumber(n) => write!(f, "Invalid rule number `{n}'"),
            ParseError::UnknownTarget(t) => write!(
                f,
                "Couldn't load target `{t}': only ACCEPT, DROP, REJECT and RETURN exist"
            ),
            ParseError::BadPolicy(p) => {
                write!(
                    f,
                    "Bad policy name `{p}': a chain's policy is ACCEPT or DROP"
                )
            }
            ParseError::UnknownRejectType(t) => write!(f, "unknown reject type \"{t}\""),
            ParseError::InterfaceNotValid(c, chain) => write!(f, "Can't use -{c} with {chain}"),
            ParseError::Rule(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ParseError {}

impl From<RuleError> for ParseError {
    fn from(e: RuleError) -> ParseError {
        ParseError::Rule(e)
    }
}

/// The command letters, as iptables names them in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Append,
    Insert,
    Replace,
    Delete,
    Check,
    Flush,
    Zero,
    Policy,
    List,
    ListRules,
}

impl Cmd {
    fn letter(self) -> char {
        match self {
            Cmd::Append => 'A',
            Cmd::Insert => 'I',
            Cmd::Replace => 'R',
            Cmd::Delete => 'D',
            Cmd::Check => 'C',
            Cmd::Flush => 'F',
            Cmd::Zero => 'Z',
            Cmd::Policy => 'P',
            Cmd::List => 'L',
            Cmd::ListRules => 'S',
        }
    }

    /// Commands that take a rule-spec.
    fn takes_rule(self) -> bool {
        matches!(
            self,
            Cmd::Append | Cmd::Insert | Cmd::Replace | Cmd::Delete | Cmd::Check
        )
    }
}

/// Everything seen on the command line.
#[derive(Default)]
struct State<'a> {
    cmd: Option<Cmd>,
    chain: Option<&'a str>,
    rulenum: Option<usize>,
    policy: Option<&'a str>,
    src: Option<(&'a str, bool)>,
    dst: Option<(&'a str, bool)>,
    proto: Option<(u8, bool)>,
    in_iface: Option<(&'a str, bool)>,
    out_iface: Option<(&'a str, bool)>,
    /// The protocol whose match is loaded (`-m tcp`, or implicitly by a port option).
    l4: Option<u8>,
    sport: Option<(u16, u16, bool)>,
    dport: Option<(u16, u16, bool)>,
    target: Option<Target>,
    verbose: bool,
    numeric: bool,
    exact: bool,
    line_numbers: bool,
    /// Rule-spec options seen (for the command/option legality check).
    rule_opts: Vec<String>,
}

/// A cursor over the arguments, with getopt's view of them.
struct Args<'a> {
    args: &'a [&'a str],
    next: usize,
}

impl<'a> Args<'a> {
    fn take(&mut self) -> Option<&'a str> {
        let a = self.args.get(self.next).copied();
        if a.is_some() {
            self.next += 1;
        }
        a
    }

    /// The next argument if it is not an option (`xs_has_arg`: does not start with `-`
    /// or `!`).
    fn take_optional(&mut self) -> Option<&'a str> {
        match self.args.get(self.next) {
            Some(a) if !a.starts_with('-') && !a.starts_with('!') => self.take(),
            _ => None,
        }
    }
}

/// Parse an iptables command line (the arguments after `iptables`). See the
/// [module docs](self) for what is supported.
///
/// ```
/// use usnet::netfilter::{parse_command, Chain, Command};
///
/// let cmd = parse_command(&["-I", "INPUT", "2", "-i", "eth+", "-j", "ACCEPT"]).unwrap();
/// assert!(matches!(cmd, Command::Insert { chain: Chain::Input, pos: 2, .. }));
/// let err = parse_command(&["-A", "INPUT", "-p", "foo", "-j", "DROP"]).unwrap_err();
/// assert_eq!(err.to_string(), "unknown protocol \"foo\" specified");
/// ```
pub fn parse_command(args: &[&str]) -> Result<Command, ParseError> {
    let mut st = State::default();
    let mut it = Args { args, next: 0 };
    let mut invert = false;
    while let Some(arg) = it.take() {
        if arg == "!" {
            if invert {
                return Err(ParseError::Usage(
                    "multiple consecutive ! not allowed".to_string(),
                ));
            }
            invert = true;
            continue;
        }
        if let Some(long) = arg.strip_prefix("--") {
            if long.is_empty() {
                return Err(ParseError::BadArgument(arg.to_string()));
            }
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let opt = long_to_short(name, &st).ok_or_else(|| unknown_option(arg, &st))?;
            if inline.is_some() && !opt.has_arg() && !opt.optional_arg() {
                return Err(ParseError::Usage(format!(
                    "option \"--{name}\" doesn't allow an argument"
                )));
            }
            handle_option(&mut st, &mut it, opt, arg, inline, invert)?;
            invert = false;
        } else if let Some(cluster) = arg.strip_prefix('-').filter(|c| !c.is_empty()) {
            // getopt: a cluster of flags, the last of which may take an argument, attached
            // or in the next word.
            for (i, c) in cluster.char_indices() {
                let rest = &cluster[i + c.len_utf8()..];
                let opt =
                    Opt::from_short(c).ok_or_else(|| unknown_option(&format!("-{c}"), &st))?;
                let display = format!("-{c}");
                // `-L`, `-S`, `-F`, `-Z` take an optional argument: as getopt's `L::`,
                // the rest of the cluster is it (`-LINPUT`; so `-Lnv` names a chain `nv`).
                if opt.has_arg() || (opt.optional_arg() && !rest.is_empty()) {
                    let inline = (!rest.is_empty()).then_some(rest);
                    handle_option(&mut st, &mut it, opt, &display, inline, invert)?;
                    invert = false;
                    break;
                }
                handle_option(&mut st, &mut it, opt, &display, None, invert)?;
                invert = false;
            }
        } else {
            return Err(ParseError::BadArgument(arg.to_string()));
        }
    }
    if invert {
        return Err(ParseError::Usage(
            "nothing appropriate following !".to_string(),
        ));
    }
    finish(st)
}

fn unknown_option(arg: &str, st: &State<'_>) -> ParseError {
    let name = arg.split('=').next().unwrap_or(arg);
    match name.trim_start_matches('-') {
        "sport" | "dport" | "source-port" | "destination-port" if st.l4.is_none() => {
            ParseError::OptionNeeds(name.to_string(), "-p tcp or -p udp")
        }
        "reject-with" if !matches!(st.target, Some(Target::Reject(_))) => {
            ParseError::OptionNeeds(name.to_string(), "-j REJECT")
        }
        _ => ParseError::UnknownOption(name.to_string()),
    }
}

/// The options, by their short letter (or a name for the long-only ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opt {
    Cmd(Cmd),
    Source,
    Destination,
    Protocol,
    InIface,
    OutIface,
    Jump,
    Match,
    Table,
    Verbose,
    Numeric,
    Exact,
    LineNumbers,
    Wait,
    Ipv4,
    Ipv6,
    Sport,
    Dport,
    RejectWith,
    /// Known to iptables, not supported here.
    Unsupported(&'static str),
}

impl Opt {
    fn from_short(c: char) -> Option<Opt> {
        Some(match c {
            'A' => Opt::Cmd(Cmd::Append),
            'I' => Opt::Cmd(Cmd::Insert),
            'R' => Opt::Cmd(Cmd::Replace),
            'D' => Opt::Cmd(Cmd::Delete),
            'C' => Opt::Cmd(Cmd::Check),
            'F' => Opt::Cmd(Cmd::Flush),
            'Z' => Opt::Cmd(Cmd::Zero),
            'P' => Opt::Cmd(Cmd::Policy),
            'L' => Opt::Cmd(Cmd::List),
            'S' => Opt::Cmd(Cmd::ListRules),
            's' => Opt::Source,
            'd' => Opt::Destination,
            'p' => Opt::Protocol,
            'i' => Opt::InIface,
            'o' => Opt::OutIface,
            'j' => Opt::Jump,
            'm' => Opt::Match,
            't' => Opt::Table,
            'v' => Opt::Verbose,
            'n' => Opt::Numeric,
            'x' => Opt::Exact,
            'w' => Opt::Wait,
            '4' => Opt::Ipv4,
            '6' => Opt::Ipv6,
            'N' => Opt::Unsupported("-N (user-defined chains)"),
            'X' => Opt::Unsupported("-X (user-defined chains)"),
            'E' => Opt::Unsupported("-E (user-defined chains)"),
            'g' => Opt::Unsupported("-g (goto a user-defined chain)"),
            'f' => Opt::Unsupported("-f (fragment match)"),
            'c' => Opt::Unsupported("-c (setting counters)"),
            _ => return None,
        })
    }

    /// Whether the option takes a (required) argument; `-L`, `-S`, `-F`, `-Z` take an
    /// optional chain and are handled apart.
    fn has_arg(self) -> bool {
        match self {
            Opt::Cmd(c) => !matches!(c, Cmd::List | Cmd::ListRules | Cmd::Flush | Cmd::Zero),
            Opt::Source
            | Opt::Destination
            | Opt::Protocol
            | Opt::InIface
            | Opt::OutIface
            | Opt::Jump
            | Opt::Match
            | Opt::Table
            | Opt::Sport
            | Opt::Dport
            | Opt::RejectWith => true,
            Opt::Verbose
            | Opt::Numeric
            | Opt::Exact
            | Opt::LineNumbers
            | Opt::Wait
            | Opt::Ipv4
            | Opt::Ipv6
            | Opt::Unsupported(_) => false,
        }
    }

    /// `-L`, `-S`, `-F`, `-Z`: a chain may follow.
    fn optional_arg(self) -> bool {
        matches!(
            self,
            Opt::Cmd(Cmd::List | Cmd::ListRules | Cmd::Flush | Cmd::Zero)
        )
    }

    /// Whether `!` may precede the option.
    fn invertible(self) -> bool {
        matches!(
            self,
            Opt::Source
                | Opt::Destination
                | Opt::Protocol
                | Opt::InIface
                | Opt::OutIface
                | Opt::Sport
                | Opt::Dport
        )
    }
}

/// Long option names; match and target options only once their extension is loaded.
fn long_to_short(name: &str, st: &State<'_>) -> Option<Opt> {
    Some(match name {
        "append" => Opt::Cmd(Cmd::Append),
        "insert" => Opt::Cmd(Cmd::Insert),
        "replace" => Opt::Cmd(Cmd::Replace),
        "delete" => Opt::Cmd(Cmd::Delete),
        "check" => Opt::Cmd(Cmd::Check),
        "flush" => Opt::Cmd(Cmd::Flush),
        "zero" => Opt::Cmd(Cmd::Zero),
        "policy" => Opt::Cmd(Cmd::Policy),
        "list" => Opt::Cmd(Cmd::List),
        "list-rules" => Opt::Cmd(Cmd::ListRules),
        "source" | "src" => Opt::Source,
        "destination" | "dst" => Opt::Destination,
        "protocol" => Opt::Protocol,
        "in-interface" => Opt::InIface,
        "out-interface" => Opt::OutIface,
        "jump" => Opt::Jump,
        "match" => Opt::Match,
        "table" => Opt::Table,
        "verbose" => Opt::Verbose,
        "numeric" => Opt::Numeric,
        "exact" => Opt::Exact,
        "line-numbers" => Opt::LineNumbers,
        "wait" => Opt::Wait,
        "ipv4" => Opt::Ipv4,
        "ipv6" => Opt::Ipv6,
        "new-chain" | "delete-chain" | "rename-chain" => {
            Opt::Unsupported("user-defined chains (-N, -X, -E)")
        }
        "goto" => Opt::Unsupported("--goto"),
        "fragment" | "fragments" => Opt::Unsupported("--fragment (-f)"),
        "set-counters" => Opt::Unsupported("--set-counters (-c)"),
        "source-port" | "sport" if st.l4.is_some() || st.can_load_l4() => Opt::Sport,
        "destination-port" | "dport" if st.l4.is_some() || st.can_load_l4() => Opt::Dport,
        "reject-with" if matches!(st.target, Some(Target::Reject(_))) => Opt::RejectWith,
        _ => return None,
    })
}

impl State<'_> {
    /// `-p tcp` / `-p udp` implicitly loads its match for port options (iptables'
    /// `load_proto`).
    fn can_load_l4(&self) -> bool {
        matches!(self.proto, Some((IPPROTO_TCP | IPPROTO_UDP, _)))
    }

    fn set_command(&mut self, cmd: Cmd) -> Result<(), ParseError> {
        if let Some(prev) = self.cmd {
            return Err(ParseError::MultipleCommands(cmd.letter(), prev.letter()));
        }
        self.cmd = Some(cmd);
        Ok(())
    }
}

fn handle_option<'a>(
    st: &mut State<'a>,
    it: &mut Args<'a>,
    opt: Opt,
    display: &str,
    inline: Option<&'a str>,
    invert: bool,
) -> Result<(), ParseError> {
    if invert && !opt.invertible() {
        return Err(ParseError::Usage(format!("cannot have ! before {display}")));
    }
    if let Opt::Unsupported(what) = opt {
        return Err(ParseError::Unsupported(what.to_string()));
    }
    let arg = |it: &mut Args<'a>| -> Result<&'a str, ParseError> {
        match inline {
            Some(v) => Ok(v),
            None => it
                .take()
                .ok_or_else(|| ParseError::MissingArgument(display.to_string())),
        }
    };
    if !matches!(
        opt,
        Opt::Cmd(_)
            | Opt::Verbose
            | Opt::Numeric
            | Opt::Exact
            | Opt::LineNumbers
            | Opt::Wait
            | Opt::Ipv4
            | Opt::Table
    ) {
        st.rule_opts.push(display.to_string());
    }
    match opt {
        Opt::Cmd(cmd) => {
            st.set_command(cmd)?;
            match cmd {
                Cmd::List | Cmd::ListRules | Cmd::Flush | Cmd::Zero => {
                    st.chain = inline.or_else(|| it.take_optional());
                    if matches!(cmd, Cmd::List | Cmd::ListRules | Cmd::Zero) {
                        if let Some(n) = it.take_optional() {
                            return Err(ParseError::Unsupported(format!(
                                "a rule number (`{n}') with -{}",
                                cmd.letter()
                            )));
                        }
                    }
                }
                Cmd::Append | Cmd::Check => st.chain = Some(arg(it)?),
                Cmd::Insert | Cmd::Replace | Cmd::Delete => {
                    st.chain = Some(arg(it)?);
                    let num = it.take_optional();
                    if cmd == Cmd::Replace && num.is_none() {
                        return Err(ParseError::Usage("-R requires a rule number".to_string()));
                    }
                    if let Some(n) = num {
                        st.rulenum = Some(parse_rulenum(n)?);
                    }
                }
                Cmd::Policy => {
                    st.chain = Some(arg(it)?);
                    st.policy = Some(it.take_optional().ok_or_else(|| {
                        ParseError::Usage("-P requires a chain and a policy".to_string())
                    })?);
                }
            }
        }
        Opt::Source => set_once(&mut st.src, (arg(it)?, invert), "-s")?,
        Opt::Destination => set_once(&mut st.dst, (arg(it)?, invert), "-d")?,
        Opt::InIface => set_once(&mut st.in_iface, (arg(it)?, invert), "-i")?,
        Opt::OutIface => set_once(&mut st.out_iface, (arg(it)?, invert), "-o")?,
        Opt::Protocol => {
            let p = parse_proto(arg(it)?)?;
            if p == 0 && invert {
                return Err(RuleError::NeverMatchesProtocol.into());
            }
            set_once(&mut st.proto, (p, invert), "-p")?;
        }
        Opt::Jump => {
            if st.target.is_some() {
                return Err(ParseError::DuplicateOption("-j".to_string()));
            }
            st.target = Some(parse_target(arg(it)?)?);
        }
        Opt::Match => {
            let name = arg(it)?;
            let p = match name.to_ascii_lowercase().as_str() {
                "tcp" => IPPROTO_TCP,
                "udp" => IPPROTO_UDP,
                _ => {
                    return Err(ParseError::Unsupported(format!(
                        "match `{name}' (only tcp and udp)"
                    )))
                }
            };
            if st.l4.is_some_and(|q| q != p) {
                return Err(ParseError::Unsupported(
                    "loading both the tcp and the udp match".to_string(),
                ));
            }
            st.l4 = Some(p);
        }
        Opt::Sport | Opt::Dport => {
            if st.l4.is_none() {
                // Implicit load of the protocol's match (`-p tcp --dport 80`).
                st.l4 = st.proto.map(|(p, _)| p);
            }
            let (lo, hi) = parse_port_range(arg(it)?)?;
            let (slot, name) = if opt == Opt::Sport {
                (&mut st.sport, "`--source-port'")
            } else {
                (&mut st.dport, "`--destination-port'")
            };
            if slot.is_some() {
                return Err(ParseError::DuplicateOption(name.to_string()));
            }
            *slot = Some((lo, hi, invert));
        }
        Opt::RejectWith => {
            let a = arg(it)?;
            let with = RejectWith::from_arg(a)
                .ok_or_else(|| ParseError::UnknownRejectType(a.to_string()))?;
            st.target = Some(Target::Reject(with));
        }
        Opt::Table => {
            let t = arg(it)?;
            if t != "filter" {
                return Err(ParseError::UnsupportedTable(t.to_string()));
            }
        }
        Opt::Verbose => st.verbose = true,
        Opt::Numeric => st.numeric = true,
        Opt::Exact => st.exact = true,
        Opt::LineNumbers => st.line_numbers = true,
        Opt::Wait => {
            // The xtables lock does not exist here; accept `-w [seconds]` and move on.
            if inline.is_none() {
                if let Some(n) = it.args.get(it.next) {
                    if n.parse::<u32>().is_ok() {
                        it.next += 1;
                    }
                }
            }
        }
        Opt::Ipv4 => {}
        Opt::Ipv6 => {
            return Err(ParseError::Unsupported(
                "-6: this is the IPv4 version of iptables".to_string(),
            ))
        }
        Opt::Unsupported(_) => {}
    }
    Ok(())
}

fn set_once<T>(slot: &mut Option<T>, value: T, name: &str) -> Result<(), ParseError> {
    if slot.is_some() {
        return Err(ParseError::DuplicateOption(name.to_string()));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_rulenum(s: &str) -> Result<usize, ParseError> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 && n <= i32::MAX as usize => Ok(n),
        _ => Err(ParseError::InvalidRuleNumber(s.to_string())),
    }
}

fn parse_chain(s: &str) -> Result<Chain, ParseError> {
    s.parse()
}

fn parse_target(s: &str) -> Result<Target, ParseError> {
    Ok(match s {
        "ACCEPT" => Target::Accept,
        "DROP" => Target::Drop,
        "REJECT" => Target::Reject(RejectWith::default()),
        "RETURN" => Target::Return,
        _ => return Err(ParseError::UnknownTarget(s.to_string())),
    })
}

/// `xtables_parse_protocol`: a number 0..=255, `all`, or a name; case-insensitive.
fn parse_proto(s: &str) -> Result<u8, ParseError> {
    if let Ok(n) = s.parse::<u8>() {
        return Ok(n);
    }
    proto_by_name(s).ok_or_else(|| ParseError::UnknownProtocol(s.to_string()))
}

/// `xtables_parse_port`, numeric only.
fn parse_port(s: &str) -> Result<u16, ParseError> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(p) = s.parse::<u16>() {
            return Ok(p);
        }
    }
    Err(ParseError::InvalidPort(s.to_string()))
}

/// libxt_tcp's `parse_tcp_ports`: `port`, `lo:hi`, `:hi` (from 0), `lo:` (to 65535).
fn parse_port_range(s: &str) -> Result<(u16, u16), ParseError> {
    let (lo, hi) = match s.split_once(':') {
        None => {
            let p = parse_port(s)?;
            (p, p)
        }
        Some((lo, hi)) => {
            let lo = if lo.is_empty() { 0 } else { parse_port(lo)? };
            let hi = if hi.is_empty() {
                u16::MAX
            } else {
                parse_port(hi)?
            };
            (lo, hi)
        }
    };
    if lo > hi {
        return Err(RuleError::InvalidPortRange(lo, hi).into());
    }
    Ok((lo, hi))
}

/// libxtables' numeric address parser: one to four dot-separated numbers 0..=255, the
/// missing ones zero (`10/8` is `10.0.0.0/8`).
fn parse_addr(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    for (n, part) in s.split('.').enumerate() {
        // A fifth part has no slot.
        let slot = octets.get_mut(n)?;
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    Some(Ipv4Addr::from(octets))
}

/// `xtables_ipparse_any` for one address: `addr`, `addr/len`, `addr/a.b.c.d` (contiguous
/// masks only).
fn parse_net(s: &str) -> Result<(Ipv4Addr, u8), ParseError> {
    if s.contains(',') {
        return Err(ParseError::Unsupported(format!(
            "several addresses in one option (`{s}'); add one rule per address"
        )));
    }
    let (addr, mask) = match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    };
    let addr = parse_addr(addr).ok_or_else(|| ParseError::InvalidAddress(s.to_string()))?;
    let prefix = match mask {
        None => 32,
        Some(m) if m.contains('.') => {
            let bits = parse_addr(m)
                .filter(|_| m.split('.').count() == 4)
                .map(u32::from)
                .ok_or_else(|| ParseError::InvalidMask(m.to_string()))?;
            // Contiguous: ones then zeros.
            if bits.leading_ones() + bits.trailing_zeros() != 32 {
                return Err(ParseError::Unsupported(format!(
                    "the non-contiguous mask `{m}'"
                )));
            }
            // `leading_ones` is at most 32, so this always fits.
            u8::try_from(bits.leading_ones()).unwrap_or(32)
        }
        Some(m) => match m.parse::<u8>() {
            Ok(p) if p <= 32 && m.bytes().all(|b| b.is_ascii_digit()) => p,
            _ => return Err(ParseError::InvalidMask(m.to_string())),
        },
    };
    Ok((addr, prefix))
}

/// Which options each command takes (iptables' `commands_v_options`, reduced).
fn check_legal(st: &State<'_>, cmd: Cmd) -> Result<(), ParseError> {
    let c = cmd.letter();
    if !cmd.takes_rule() {
        if let Some(o) = st.rule_opts.first() {
            return Err(ParseError::IllegalOption(o.clone(), c));
        }
    }
    if cmd != Cmd::List {
        if st.numeric {
            return Err(ParseError::IllegalOption("-n".to_string(), c));
        }
        if st.exact {
            return Err(ParseError::IllegalOption("-x".to_string(), c));
        }
        if st.line_numbers {
            return Err(ParseError::IllegalOption("--line-numbers".to_string(), c));
        }
    }
    if cmd == Cmd::Delete && st.rulenum.is_some() {
        if let Some(o) = st.rule_opts.first() {
            return Err(ParseError::IllegalOption(o.clone(), c));
        }
    }
    Ok(())
}

fn build_rule(st: &State<'_>, chain: Chain) -> Result<Rule, ParseError> {
    if chain == Chain::Input && st.out_iface.is_some() {
        return Err(ParseError::InterfaceNotValid('o', chain));
    }
    if chain == Chain::Output && st.in_iface.is_some() {
        return Err(ParseError::InterfaceNotValid('i', chain));
    }
    let mut b = Rule::builder();
    if let Some((s, neg)) = st.src {
        let (a, p) = parse_net(s)?;
        b = if neg { b.src_not(a, p) } else { b.src(a, p) };
    }
    if let Some((s, neg)) = st.dst {
        let (a, p) = parse_net(s)?;
        b = if neg { b.dst_not(a, p) } else { b.dst(a, p) };
    }
    if let Some((p, neg)) = st.proto {
        b = if neg { b.proto_not(p) } else { b.proto(p) };
    }
    if let Some(l4) = st.l4 {
        // The loaded match must be the rule's protocol (the kernel's xt_check_match).
        if st.proto != Some((l4, false)) {
            return Err(RuleError::PortsNeedTcpOrUdp.into());
        }
        b = b.l4_match();
    }
    if let Some((lo, hi, neg)) = st.sport {
        b = if neg {
            b.sport_not(lo, hi)
        } else {
            b.sport(lo, hi)
        };
    }
    if let Some((lo, hi, neg)) = st.dport {
        b = if neg {
            b.dport_not(lo, hi)
        } else {
            b.dport(lo, hi)
        };
    }
    if let Some((name, neg)) = st.in_iface {
        b = if neg {
            b.in_iface_not(name)
        } else {
            b.in_iface(name)
        };
    }
    if let Some((name, neg)) = st.out_iface {
        b = if neg {
            b.out_iface_not(name)
        } else {
            b.out_iface(name)
        };
    }
    if let Some(t) = st.target {
        b = b.target(t);
    }
    Ok(b.build()?)
}

fn finish(st: State<'_>) -> Result<Command, ParseError> {
    let cmd = st.cmd.ok_or(ParseError::NoCommand)?;
    check_legal(&st, cmd)?;
    let chain = st.chain.map(parse_chain).transpose()?;
    // Commands with a mandatory chain always have one here (the parser took it).
    let need_chain = || chain.ok_or(ParseError::MissingArgument(format!("-{}", cmd.letter())));
    Ok(match cmd {
        Cmd::Append => {
            let chain = need_chain()?;
            Command::Append {
                chain,
                rule: build_rule(&st, chain)?,
            }
        }
        Cmd::Insert => {
            let chain = need_chain()?;
            Command::Insert {
                chain,
                pos: st.rulenum.unwrap_or(1),
                rule: build_rule(&st, chain)?,
            }
        }
        Cmd::Replace => {
            let chain = need_chain()?;
            Command::Replace {
                chain,
                pos: st.rulenum.unwrap_or(1),
                rule: build_rule(&st, chain)?,
            }
        }
        Cmd::Delete => {
            let chain = need_chain()?;
            match st.rulenum {
                Some(pos) => Command::DeleteNum { chain, pos },
                None => Command::Delete {
                    chain,
                    rule: build_rule(&st, chain)?,
                },
            }
        }
        Cmd::Check => {
            let chain = need_chain()?;
            Command::Check {
                chain,
                rule: build_rule(&st, chain)?,
            }
        }
        Cmd::Flush => Command::Flush { chain },
        Cmd::Zero => Command::Zero { chain },
        Cmd::Policy => {
            let chain = need_chain()?;
            let p = st.policy.unwrap_or("");
            let target = match p {
                "ACCEPT" => Target::Accept,
                "DROP" => Target::Drop,
                _ => return Err(ParseError::BadPolicy(p.to_string())),
            };
            Command::Policy { chain, target }
        }
        Cmd::List => Command::List {
            chain,
            format: ListFormat {
                verbose: st.verbose,
                exact: st.exact,
                line_numbers: st.line_numbers,
            },
        },
        Cmd::ListRules => Command::ListRules { chain },
    })
}
