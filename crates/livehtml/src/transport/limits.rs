use std::time::Duration;

use crate::link::Rate;
use crate::protocol::ParseLimits;

/// Per-endpoint limits of the WebSocket transport.
///
/// ```
/// use std::time::Duration;
/// use livehtml::Limits;
///
/// let limits = Limits::default()
///     .max_message_bytes(16 * 1024)
///     .outbound_queue(64)
///     .ping_interval(Duration::from_secs(10));
/// assert_eq!(limits.get_max_message_bytes(), 16 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub(crate) max_message_bytes: usize,
    pub(crate) outbound_queue: usize,
    pub(crate) ping_interval: Duration,
    pub(crate) close_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) sse_heartbeat: Duration,
    pub(crate) sse_retry: Duration,
    pub(crate) rate: Rate,
    pub(crate) poll_hold: Duration,
    pub(crate) poll_idle: Duration,
    pub(crate) max_depth: usize,
    pub(crate) max_fields: usize,
    pub(crate) read_buffer: usize,
    pub(crate) max_head_bytes: usize,
    pub(crate) compression: bool,
}

impl Default for Limits {
    fn default() -> Self {
        let parse = ParseLimits::default();
        Self {
            max_message_bytes: parse.max_bytes,
            outbound_queue: 256,
            ping_interval: Duration::from_secs(25),
            close_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            sse_heartbeat: Duration::from_secs(15),
            sse_retry: Duration::from_secs(1),
            rate: Rate { per_second: 50, burst: 200 },
            poll_hold: Duration::from_secs(25),
            poll_idle: Duration::from_secs(40),
            max_depth: parse.max_depth,
            max_fields: parse.max_fields,
            read_buffer: 64,
            max_head_bytes: 16 * 1024,
            compression: true,
        }
    }
}

impl Limits {
    /// Largest inbound message (default 64 KiB). A larger one closes the connection with 1009
    /// as soon as its header announces the size; the rest of it is never buffered.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes.max(1);
        self
    }

    /// The configured inbound message limit.
    pub fn get_max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// Capacity of each connection's outbound queue, in messages (default 256). When a client
    /// falls this far behind, it is closed with 1013 (slow consumer); see [`crate::PubSub`].
    ///
    /// The queue holds only what the socket did not take: the kernel's send buffer (and the
    /// client's receive buffer) come first, and on Linux the send buffer grows to a few MB for a
    /// client that reads slowly. So a client is this many messages behind *plus* what its
    /// socket buffers hold; a client that takes no bytes at all is closed by
    /// [`Limits::write_timeout`] instead, which bounds what the kernel holds for it in time.
    pub fn outbound_queue(mut self, messages: usize) -> Self {
        self.outbound_queue = messages.max(1);
        self
    }

    /// How often the server pings (default 25 s). A client that sends nothing, not even a pong,
    /// for a whole interval after a ping is closed with 4001 (heartbeat timeout).
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How long a closing connection waits to deliver its close frame and hear the client's
    /// reply before the TCP connection is dropped (default 5 s).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// How long a write may make no progress (default 10 s): a connection whose socket takes
    /// not one byte of what is queued for it for this long is closed with 1013 and its TCP
    /// connection dropped. It is checked when it expires, so a stalled client is closed between
    /// one and two timeouts after its last byte was taken. A client that reads, however slowly,
    /// is bounded by [`Limits::outbound_queue`] instead.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How often an SSE stream gets a `: heartbeat` comment (default 15 s), which keeps proxies
    /// from closing a quiet stream and finds clients that are gone.
    pub fn sse_heartbeat(mut self, interval: Duration) -> Self {
        self.sse_heartbeat = interval.max(Duration::from_millis(10));
        self
    }

    /// The `retry:` an SSE stream announces: how long EventSource waits before it reconnects
    /// (default 1 s).
    pub fn sse_retry(mut self, delay: Duration) -> Self {
        self.sse_retry = delay;
        self
    }

    /// How many messages a page may send: `per_second` on average, `burst` at once (default 50
    /// and 200: far above what a person clicks or types). A message beyond it is dropped (the
    /// session never sees it); a page that goes on sending as many again beyond it is closed
    /// with 1008 (policy), reason "rate limit". Other pages never notice either.
    pub fn rate_limit(mut self, per_second: u32, burst: u32) -> Self {
        self.rate = Rate { per_second: per_second.max(1), burst: burst.max(1) };
        self
    }

    /// No message allowance: for endpoints whose clients are trusted to send as fast as they
    /// can (a protocol test suite's echo, a load generator's sender).
    pub fn no_rate_limit(mut self) -> Self {
        self.rate = Rate::NONE;
        self
    }

    /// How long a long-poll `GET` waits for something to send before it answers with nothing
    /// (default 25 s, under the usual 30 s of proxies' idle timeouts).
    pub fn poll_hold(mut self, hold: Duration) -> Self {
        self.poll_hold = hold.max(Duration::from_millis(10));
        self
    }

    /// How long a long-poll session lasts without a poll (default 40 s): then its page is taken
    /// as gone and the session ends.
    pub fn poll_idle(mut self, idle: Duration) -> Self {
        self.poll_idle = idle.max(Duration::from_millis(10));
        self
    }

    /// Deepest JSON nesting accepted in an event (default 4).
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Size of the WebSocket parser's own buffer in each connection, and how many bytes it
    /// takes at a time (default 64). It is held for the life of the connection, so it is kept
    /// small: sockets are read through one 64 KiB buffer per thread, and a connection keeps
    /// only the bytes the parser has not taken yet, handed over without further syscalls. A
    /// larger message is still read whole (the buffer grows to the frame's announced length
    /// while reading it). A larger value means fewer, larger copies for big inbound messages.
    pub fn read_buffer(mut self, bytes: usize) -> Self {
        self.read_buffer = bytes.max(16);
        self
    }

    /// Most bytes of request headers (names, values and their separators) a WebSocket upgrade,
    /// an event stream or a long-poll session may open with (default 16 KiB); beyond it, `431
    /// Request Header Fields Too Large`. What a connection holds for its whole life starts
    /// small: the request's headers are kept while the session is set up.
    pub fn max_head_bytes(mut self, bytes: usize) -> Self {
        self.max_head_bytes = bytes;
        self
    }

    /// Whether a WebSocket may agree to permessage-deflate (RFC 7692) when its client offers it
    /// (default: yes; every browser offers it). Each message is compressed once and its bytes
    /// shared by every page that agreed (no context is kept between messages, so an idle
    /// connection costs nothing more), and a page's compressed messages are inflated at most to
    /// [`Limits::max_message_bytes`] (a bomb closes with 1009 having cost that much).
    pub fn compression(mut self, on: bool) -> Self {
        self.compression = on;
        self
    }

    pub(crate) fn rate(&self) -> Rate {
        self.rate
    }

    pub(crate) fn parse(&self) -> ParseLimits {
        ParseLimits { max_bytes: self.max_message_bytes, max_depth: self.max_depth, max_fields: self.max_fields }
    }
}
