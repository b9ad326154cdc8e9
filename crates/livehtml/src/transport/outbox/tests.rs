//! The queue, its cork and its close signal, without sockets; SSE framing over a real one.

use super::*;

#[tokio::test]
async fn overflow_requests_slow_consumer_close() {
    let (outbox, inbox) = outbox(2);
    assert_eq!(outbox.offer(Frame::text("1")), Offer::Queued);
    assert_eq!(outbox.offer(Frame::text("2")), Offer::Queued);
    assert_eq!(outbox.offer(Frame::text("3")), Offer::Overflowed);
    assert!(matches!(inbox.ready().await, Ready::Close(close::SLOW_CONSUMER)));
    assert!(matches!(inbox.pop(), Some(f) if f == Frame::text("1")));
    drop(inbox);
    assert_eq!(outbox.offer(Frame::text("4")), Offer::Closed);
    assert!(outbox.is_closed());
}

#[tokio::test]
async fn a_sealed_connection_refuses_offers_and_pings_but_keeps_what_was_queued() {
    let (outbox, inbox) = outbox(8);
    assert_eq!(outbox.offer(Frame::text("before")), Offer::Queued);
    inbox.seal();
    assert_eq!(outbox.offer(Frame::text("after")), Offer::Closed);
    assert_eq!(outbox.offer_in_burst(Frame::text("after")), Offer::Closed);
    assert!(outbox.is_closed());
    assert!(matches!(inbox.pop(), Some(f) if f.as_text() == Some("before")));
    assert!(inbox.pop().is_none());
}

#[tokio::test]
async fn first_close_code_wins() {
    let (_outbox, inbox) = outbox(1);
    inbox.close(close::RESTART);
    inbox.close(close::SLOW_CONSUMER);
    assert!(matches!(inbox.ready().await, Ready::Close(close::RESTART)));
}

#[tokio::test]
async fn a_queued_info_wakes_the_waiting_task() {
    let (outbox, inbox) = outbox(4);
    let waiter = tokio::spawn(async move { inbox.ready().await });
    tokio::task::yield_now().await;
    outbox.offer_info(Info::new("t", 7u8));
    let Ready::Info(info) = waiter.await.unwrap() else { panic!("an info") };
    assert_eq!(info.get::<u8>(), Some(&7));
}

#[tokio::test]
async fn corked_frames_are_held_until_the_pass_ends() {
    let (outbox, inbox) = outbox(8);
    let during = Corked::new(async {
        outbox.offer(Frame::text("a"));
        outbox.offer(Frame::text("b"));
        cork::active()
    })
    .await;
    assert!(during && !cork::active());
    assert!(!inbox.shared.out().corked());
    assert!(matches!(inbox.pop(), Some(f) if f.as_text() == Some("a")));
    assert!(matches!(inbox.pop(), Some(f) if f.as_text() == Some("b")));
}

#[tokio::test]
async fn a_long_pass_keeps_its_order_across_batches() {
    let (outbox, inbox) = outbox(1024);
    let count = 3 * BATCH + 5;
    Corked::new(async {
        for i in 0..count {
            assert_eq!(outbox.offer(Frame::text(i.to_string())), Offer::Queued);
        }
    })
    .await;
    for i in 0..count {
        let Some(f) = inbox.pop() else { panic!("frame {i}") };
        assert_eq!(f.as_text(), Some(i.to_string().as_str()));
    }
    assert!(inbox.pop().is_none());
}

#[tokio::test]
async fn a_wide_pass_is_written_from_two_threads_in_order() {
    let queues: Vec<_> = (0..600).map(|_| outbox(8)).collect();
    Corked::new(async {
        for i in 0..3 {
            for (outbox, _) in &queues {
                assert_eq!(outbox.offer(Frame::text(i.to_string())), Offer::Queued);
            }
        }
    })
    .await;
    for (_, inbox) in &queues {
        for i in 0..3 {
            let Some(f) = inbox.pop() else { panic!("frame {i}") };
            assert_eq!(f.as_text(), Some(i.to_string().as_str()));
        }
    }
}

/// Whether a pass was corked when it was offered a frame.
#[derive(Debug, Default)]
struct Probe(Mutex<Vec<bool>>);

impl Subscriber for Probe {
    fn offer(&self, frame: Frame) -> Offer {
        if !frame.is_mark() {
            self.0.lock().unwrap().push(cork::active());
        }
        Offer::Queued
    }
    fn offer_info(&self, _: Info) -> Offer {
        Offer::Queued
    }
    fn is_closed(&self) -> bool {
        false
    }
    fn resync(&self) {}
}

/// A publish from outside any connection's pass (an HTTP handler, a background task) is run
/// through the connections' batch: corked, so a wide fan-out is written from two threads.
#[test]
fn a_publish_from_outside_a_pass_is_corked() {
    let pubsub = crate::pubsub::PubSub::default();
    let (outbox, inbox) = outbox(8);
    let probe = Arc::new(Probe::default());
    let _a = pubsub.subscribe("t", outbox, None, usize::MAX);
    let _b = pubsub.subscribe("t", probe.clone(), None, usize::MAX);
    assert!(!cork::active());
    assert_eq!(pubsub.publish("t", Frame::text("a")), 2);
    assert!(!cork::active(), "the cork ends with the fan-out");
    assert_eq!(*probe.0.lock().unwrap(), [true]);
    assert!(matches!(inbox.pop(), Some(f) if f.as_text() == Some("a")));
    assert!(!inbox.shared.out().corked());
}

/// The livelock of issue 9: frames offered after the socket failed were queued, and the task
/// was told `Frames` with no socket to write them to, over and over.
#[tokio::test]
async fn a_gone_socket_refuses_everything_and_ends_the_task() {
    let (outbox, inbox) = outbox(8);
    inbox.shared.out().wire = None;
    inbox.shared.out().gone(&std::io::ErrorKind::BrokenPipe.into());
    assert_eq!(outbox.offer(Frame::text("after")), Offer::Closed);
    assert_eq!(outbox.offer_info(Info::new("t", 1u8)), Offer::Closed);
    inbox.push_control(Frame::ping());
    assert!(inbox.pop().is_none(), "nothing queued for a socket that is gone");
    assert!(matches!(inbox.ready().await, Ready::Gone));
    // Waiters on the queue end too.
    inbox.flushed().await;
    inbox.shutdown_write().await;
}

#[tokio::test]
async fn a_stall_is_cleared_progressed_or_stuck() {
    let (outbox, inbox) = outbox(8);
    assert_eq!(inbox.stall(0), Stall::Cleared);
    outbox.offer(Frame::text("a"));
    assert_eq!(inbox.stall(0), Stall::Stuck);
    inbox.shared.out().progress = 3;
    assert_eq!(inbox.stall(0), Stall::Progressed(3));
    assert_eq!(inbox.stall(3), Stall::Stuck);
}

#[test]
fn discarding_keeps_a_partly_written_frame() {
    let (outbox, inbox) = outbox(8);
    outbox.offer(Frame::text("a"));
    outbox.offer(Frame::text("b"));
    inbox.shared.out().written = 1;
    inbox.discard_unsent();
    assert_eq!(inbox.shared.out().frames.len(), 1);
    inbox.shared.out().written = 0;
    inbox.discard_unsent();
    assert!(inbox.pop().is_none());
}

/// A pushed SSE stream over a socket whose peer reads slowly: writes stop halfway through
/// events and resume from the same bytes, so every chunk is whole and the ids follow each other
/// with none skipped or repeated, whether the frames came one by one or in bursts.
#[tokio::test]
async fn sse_events_resume_after_partial_writes_with_their_ids_in_order() {
    use tokio::io::AsyncReadExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = tokio::net::TcpSocket::new_v4().unwrap();
    client.set_recv_buffer_size(1024).unwrap();
    let (client, server) = tokio::join!(client.connect(listener.local_addr().unwrap()), listener.accept());
    let (mut client, (server, _)) = (client.unwrap(), server.unwrap());
    let framing = Framing::sse(false);
    let (outbox, inbox, _poster) = attach_push(4096, Wire::Tcp(server), framing, chunk(b"retry: 1\n\n"));
    let count = 600;
    let body = "x".repeat(700);
    let task = tokio::spawn(async move {
        for i in 0..count {
            let frame = Frame::text(format!("{i}:{body}"));
            let offered = if i % 3 == 0 { outbox.offer(frame) } else { outbox.offer_in_burst(frame) };
            assert_eq!(offered, Offer::Queued);
            if i % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
        inbox.push_last(Frame::raw(bytes::Bytes::from_static(LAST_CHUNK)));
        inbox.shutdown_write().await;
        inbox
    });

    let mut raw = Vec::new();
    client.read_to_end(&mut raw).await.unwrap();
    let _inbox = task.await.unwrap();
    // Chunked decoding: every chunk whole, the body ends with the last chunk.
    let mut text = String::new();
    let mut rest = &raw[..];
    loop {
        let line = rest.windows(2).position(|w| w == b"\r\n").expect("a chunk-size line");
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line]).unwrap(), 16).unwrap();
        if size == 0 {
            assert_eq!(&rest[line..], b"\r\n\r\n");
            break;
        }
        text.push_str(std::str::from_utf8(&rest[line + 2..line + 2 + size]).unwrap());
        assert_eq!(&rest[line + 2 + size..line + 4 + size], b"\r\n");
        rest = &rest[line + 4 + size..];
    }
    let events: Vec<&str> = text.strip_prefix("retry: 1\n\n").unwrap().split_terminator("\n\n").collect();
    assert_eq!(events.len(), count);
    for (i, event) in events.iter().enumerate() {
        let expected = format!("id: {}\ndata: {i}:", i + 1);
        assert!(event.starts_with(&expected), "event {i}: {:?}", &event[..40.min(event.len())]);
    }
}
