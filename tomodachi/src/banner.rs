//! The start-up banner printed to stdout outside production mode.
//!
//! ```
//! let mut out = Vec::new();
//! tomodachi::banner::write(&mut out, &["orders"])?;
//! let text = String::from_utf8(out).unwrap();
//! assert!(text.contains("orders"));
//! assert!(text.contains(&format!("[pid: {}]", std::process::id())));
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, IsTerminal, Write};

use crate::cli::VERSION;

const RESET: &str = "\x1b[0m";
const LABEL: &str = "\x1b[0m\x1b[37m\x1b[1m\x1b[2m";
const TEXT: &str = "\x1b[0m\x1b[37m";
const DIM_TEXT: &str = "\x1b[0m\x1b[37m\x1b[2m";
const PID: &str = "\x1b[0m\x1b[32m\x1b[1m\x1b[2m";
const NOTICE: &str = "\x1b[0m\x1b[93m\x1b[2m\x1b[1m";
const TITLE: &str = "\x1b[0m\x1b[90m\x1b[1m";

/// Longest command line shown before it is cut with `...`.
const COMMAND_WIDTH: usize = 60;

/// What the banner shows: service names, process id, command line, system and versions.
///
/// [`Banner::new`] reads the process's values; the setters replace them (for tests or
/// custom output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    services: Vec<String>,
    pid: u32,
    command: String,
    system: String,
    hostname: Option<String>,
    color: bool,
}

impl Banner {
    /// A banner for these services, with this process's id, command line, OS and host name.
    pub fn new<I, S>(services: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let command: Vec<String> = std::env::args_os()
            .enumerate()
            .map(|(i, arg)| {
                let arg = arg.to_string_lossy().into_owned();
                if i == 0 {
                    arg.rsplit('/').next().unwrap_or_default().to_owned()
                } else {
                    arg
                }
            })
            .collect();
        Self {
            services: services.into_iter().map(Into::into).collect(),
            pid: std::process::id(),
            command: shell_line(&command),
            system: format!("{} on {}", std::env::consts::OS, std::env::consts::ARCH),
            hostname: hostname(),
            color: false,
        }
    }

    /// Replaces the process id.
    #[must_use]
    pub fn pid(mut self, pid: u32) -> Self {
        self.pid = pid;
        self
    }

    /// Replaces the command line shown (cut to 60 characters).
    #[must_use]
    pub fn command(mut self, command: impl Into<String>) -> Self {
        self.command = command.into();
        self
    }

    /// Replaces the operating system line.
    #[must_use]
    pub fn system(mut self, system: impl Into<String>) -> Self {
        self.system = system.into();
        self
    }

    /// Replaces the host name (`None` hides it).
    #[must_use]
    pub fn hostname(mut self, hostname: Option<String>) -> Self {
        self.hostname = hostname;
        self
    }

    /// Turns ANSI colours on or off (off by default).
    #[must_use]
    pub fn color(mut self, color: bool) -> Self {
        self.color = color;
        self
    }

    /// Writes the banner.
    pub fn write_to<W: Write + ?Sized>(&self, out: &mut W) -> io::Result<()> {
        let c = |code: &'static str| if self.color { code } else { "" };
        let (label, text, dim, reset) = (c(LABEL), c(TEXT), c(DIM_TEXT), c(RESET));
        let arrow = "⇢";
        let mut lines = Vec::with_capacity(12);
        lines.push(String::new());
        lines.push(format!("{}tomodachi-rs  友達{reset}", c(TITLE)));
        lines.push(String::new());
        let pid = format!("[pid: {}]", self.pid);
        lines.push(format!(
            "{label}process {}{pid}{label}{:pad$} {arrow} {text}$ {}{reset}",
            c(PID),
            "",
            cut(&self.command, COMMAND_WIDTH),
            pad = 14usize.saturating_sub(pid.chars().count()),
        ));
        let (name, services) = match self.services.len() {
            1 => ("service ", self.services[0].clone()),
            _ => ("services", self.services.join(", ")),
        };
        lines.push(format!(
            "{label}{name}               {arrow} {text}{services}{reset}"
        ));
        lines.push(String::new());
        let host = self
            .hostname
            .as_deref()
            .map(|h| format!("{dim} (hostname: {h})"))
            .unwrap_or_default();
        lines.push(format!(
            "{label}operating system       {arrow} {text}{}{host}{reset}",
            self.system
        ));
        lines.push(format!(
            "{label}tomodachi-rs version   {arrow} {text}{VERSION}{reset}"
        ));
        lines.push(String::new());
        lines.push(format!(
            "{}⌁ [notice ] <ctrl+c> stops the services (in-flight work finishes first){reset}",
            c(NOTICE)
        ));
        lines.push(String::new());
        out.write_all(lines.join("\n").as_bytes())?;
        out.write_all(b"\n")?;
        out.flush()
    }
}

/// Writes the banner of these services (plain text, this process's values) to `out`.
pub fn write<W: Write + ?Sized>(out: &mut W, services: &[&str]) -> io::Result<()> {
    Banner::new(services.iter().copied()).write_to(out)
}

/// Writes the banner of these services to `out` unless `production` (plain text).
pub fn write_unless_production<W: Write + ?Sized>(
    out: &mut W,
    services: &[&str],
    production: bool,
) -> io::Result<()> {
    if production {
        return Ok(());
    }
    write(out, services)
}

/// Prints the banner to stdout unless `production`; coloured when stdout is a terminal
/// and colours are not turned off (by the variables [`crate::logging::color_enabled`]
/// reads).
pub fn print(services: &[&str], production: bool) -> io::Result<()> {
    if production {
        return Ok(());
    }
    let stdout = io::stdout();
    let color = stdout.is_terminal() && crate::logging::colors_allowed_by_env();
    Banner::new(services.iter().copied())
        .color(color)
        .write_to(&mut stdout.lock())
}

/// Joins arguments as a shell would read them, quoting those that need it.
fn shell_line(args: &[String]) -> String {
    args.iter()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let kept: String = text.chars().take(width.saturating_sub(4)).collect();
    format!("{} ...", kept.trim_end())
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fixed(services: &[&str]) -> Banner {
        Banner::new(services.iter().copied())
            .pid(4242)
            .command("orders --log-level debug")
            .system("linux on x86_64")
            .hostname(Some("box".into()))
    }

    fn text(banner: &Banner) -> String {
        let mut out = Vec::new();
        banner.write_to(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_banner_layout() {
        let expected = format!(
            "\ntomodachi-rs  友達\n\n\
             process [pid: 4242]    ⇢ $ orders --log-level debug\n\
             service                ⇢ orders\n\n\
             operating system       ⇢ linux on x86_64 (hostname: box)\n\
             tomodachi-rs version   ⇢ {VERSION}\n\n\
             ⌁ [notice ] <ctrl+c> stops the services (in-flight work finishes first)\n\n"
        );
        assert_eq!(text(&fixed(&["orders"])), expected);
    }

    #[test]
    fn several_services_and_no_hostname() {
        let out = text(&fixed(&["orders", "billing"]).hostname(None));
        assert!(
            out.contains("services               ⇢ orders, billing\n"),
            "{out}"
        );
        assert!(
            out.contains("operating system       ⇢ linux on x86_64\n"),
            "{out}"
        );
        assert!(out.contains(crate::TOMODACHI_COMPATIBLE_VERSION));
    }

    #[test]
    fn colours_only_when_asked() {
        assert!(!text(&fixed(&["a"])).contains('\x1b'));
        let coloured = text(&fixed(&["a"]).color(true));
        assert!(coloured.contains("\x1b[32m"));
        assert!(coloured.contains("[pid: 4242]"));
    }

    #[test]
    fn long_commands_are_cut_and_args_quoted() {
        let long = "x".repeat(100);
        let out = text(&fixed(&["a"]).command(long));
        let line = out.lines().find(|l| l.starts_with("process")).unwrap();
        assert!(line.ends_with(" ..."), "{line}");
        assert!(line.chars().count() < 100);
        assert_eq!(
            shell_line(&[
                "svc".into(),
                "a b".into(),
                "it's".into(),
                "".into(),
                "--x=1".into()
            ]),
            r"svc 'a b' 'it'\''s' '' --x=1"
        );
    }

    #[test]
    fn write_uses_this_process() {
        let mut out = Vec::new();
        write(&mut out, &["orders"]).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains(&format!("[pid: {}]", std::process::id())));
        assert!(out.contains("service                ⇢ orders"));
    }

    #[test]
    fn production_writes_nothing() {
        let mut out = Vec::new();
        write_unless_production(&mut out, &["orders"], true).unwrap();
        assert!(out.is_empty());
        write_unless_production(&mut out, &["orders"], false).unwrap();
        assert!(String::from_utf8(out).unwrap().contains("⇢ orders"));
    }
}
