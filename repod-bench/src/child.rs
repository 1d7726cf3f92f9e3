//! Servers run in a child process: the bench binary re-executed with the hidden `serve`
//! subcommand. The child prints `LISTENING <addr>` once bound and exits when its stdin closes.

use std::io;
use std::net::SocketAddr;
use std::process::Stdio;

use repod_core::Codec;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::{Impl, ServeConfig};

/// A running server process.
pub struct ServerProcess {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    pub addr: SocketAddr,
    /// Where it serves TLS, if it said so (a `TLS <addr>` line before `LISTENING`).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub tls_addr: Option<SocketAddr>,
}

impl ServerProcess {
    /// Starts `imp`'s server with these settings.
    pub async fn start(imp: Impl, cfg: ServeConfig) -> io::Result<ServerProcess> {
        let ServeConfig {
            codec,
            echo,
            block_on,
            rooms,
            cluster,
        } = cfg;
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.arg("serve")
            .arg("--impl")
            .arg(imp.name())
            .arg("--codec")
            .arg(codec.name());
        if echo {
            cmd.arg("--echo");
        }
        if block_on {
            cmd.arg("--block-on");
        }
        if let Some(r) = rooms {
            cmd.args(["--rooms", &r.rooms.to_string()])
                .args(["--hz", &r.hz.to_string()])
                .args(["--size", &r.size.to_string()]);
            if r.stagger {
                cmd.arg("--stagger");
            }
        }
        if let Some(port) = cluster {
            cmd.args(["--cluster-port", &port.to_string()]);
        }
        Self::spawn(cmd).await
    }

    /// Starts this binary with `args` (a hidden server subcommand and its options).
    pub async fn start_with(args: &[&str]) -> io::Result<ServerProcess> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(args);
        Self::spawn(cmd).await
    }

    /// Spawns a server child and reads the address it announces.
    async fn spawn(mut cmd: Command) -> io::Result<ServerProcess> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stdout = BufReader::new(stdout).lines();
        let mut line = stdout.next_line().await?.unwrap_or_default();
        let mut tls_addr = None;
        if let Some(addr) = line.trim().strip_prefix("TLS ") {
            tls_addr = addr.parse().ok();
            line = stdout.next_line().await?.unwrap_or_default();
        }
        let addr = line
            .trim()
            .strip_prefix("LISTENING ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| io::Error::other(format!("server child said {line:?}")))?;
        Ok(ServerProcess {
            child,
            stdout,
            addr,
            tls_addr,
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> io::Result<u32> {
        self.child
            .id()
            .ok_or_else(|| io::Error::other("server child already exited"))
    }

    /// The child's resident set size in bytes.
    pub fn rss(&self) -> io::Result<u64> {
        rss_of(self.pid()?)
    }

    /// Sends one line to the child and returns its one-line answer.
    pub async fn query(&mut self, line: &str) -> io::Result<String> {
        let stdin = self
            .child
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("server child's stdin is closed"))?;
        stdin.write_all(format!("{line}\n").as_bytes()).await?;
        stdin.flush().await?;
        tokio::time::timeout(std::time::Duration::from_secs(10), self.stdout.next_line())
            .await
            .map_err(|_| io::Error::other("server child did not answer"))??
            .ok_or_else(|| io::Error::other("server child exited"))
    }

    /// Closes the child's stdin, which ends it, and waits; kills it after 5 s.
    pub async fn stop(mut self) -> io::Result<()> {
        drop(self.child.stdin.take());
        match tokio::time::timeout(std::time::Duration::from_secs(5), self.child.wait()).await {
            Ok(status) => status.map(drop),
            Err(_) => self.child.kill().await,
        }
    }
}

/// CPU time (user + system) a process has used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name, in parentheses, may hold spaces: count fields after its end.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("malformed /proc/<pid>/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the file (utime, stime) are the 12th and 13th after the name.
    let ticks = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other("malformed /proc/<pid>/stat"))
    };
    // SAFETY: sysconf only reads a system setting.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((ticks(11)? + ticks(12)?) as f64 / hz)
}

/// `VmRSS` of a process, in bytes.
pub fn rss_of(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| io::Error::other("no VmRSS in /proc/<pid>/status"))
}

/// Raises the soft limit on open files to the hard limit; returns the new soft limit.
pub fn raise_nofile() -> libc::rlim_t {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            let _ = libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
        lim.rlim_cur
    }
}

/// Busy and total CPU time of the whole machine so far, in seconds (from `/proc/stat`).
pub fn machine_cpu_seconds() -> io::Result<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat
        .lines()
        .next()
        .filter(|l| l.starts_with("cpu "))
        .ok_or_else(|| io::Error::other("no cpu line in /proc/stat"))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    // SAFETY: sysconf only reads a system setting.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(((total - idle) as f64 / hz, total as f64 / hz))
}
