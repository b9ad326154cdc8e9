//! Readings of a server process and of the kernel, from /proc.

use std::fs;

/// CPU time and memory of one process.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProcStat {
    /// Resident set size, KiB (`VmRSS`).
    pub(crate) rss_kb: u64,
    /// User plus system CPU time, in clock ticks.
    pub(crate) cpu_ticks: u64,
}

pub(crate) fn read(pid: u32) -> std::io::Result<ProcStat> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; fields after its closing paren are positional.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the paren.
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok(ProcStat { rss_kb, cpu_ticks: tick(11) + tick(12) })
}

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 on Linux x86-64).
pub(crate) fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// Kernel memory held by TCP sockets, bytes (`/proc/net/sockstat`, `TCP: ... mem <pages>`).
/// Machine-wide: on loopback it counts both ends of every connection.
pub(crate) fn tcp_kernel_bytes() -> u64 {
    let Ok(s) = fs::read_to_string("/proc/net/sockstat") else { return 0 };
    let pages = s
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| {
            let mut it = l.split_whitespace();
            while let Some(word) = it.next() {
                if word == "mem" {
                    return it.next().and_then(|v| v.parse::<u64>().ok());
                }
            }
            None
        })
        .unwrap_or(0);
    pages * 4096
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_our_own_process() {
        let s = super::read(std::process::id()).unwrap();
        assert!(s.rss_kb > 0);
        assert!(super::ticks_per_second() > 0);
    }
}
