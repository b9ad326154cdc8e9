//! Uploads to a live view: offers checked before a byte is sent, chunks over the socket with
//! progress, the complete file handed to the view, and bad chunks refused.

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use common::{WAIT, next_text};
use futures_util::{SinkExt, StreamExt};
use livehtml::view::{Upload, UploadedFile};
use livehtml::{Context, Event, Html, Live, LiveRoutes, LiveView, Mount, ViewError};
use tokio_tungstenite::tungstenite::Message;

type Received = Arc<Mutex<Vec<UploadedFile>>>;

struct Docs {
    received: Received,
    docs: Upload,
}

impl LiveView for Docs {
    type State = Received;

    async fn mount(received: &Received, _: &Mount) -> Result<Self, ViewError> {
        let docs = Upload::new("docs").accept(&["text/plain", ".md"]).max_size(100_000).max_files(2);
        Ok(Docs { received: received.clone(), docs })
    }

    fn render(&self) -> Html {
        let mut out = String::from(r#"<ul id="progress">"#);
        for e in self.docs.entries() {
            out.push_str(&format!(r#"<li id="file-{}">{} {}%</li>"#, e.id(), Html::escape(e.name()), e.percent()));
        }
        out.push_str(r#"</ul><p id="errors">"#);
        out.push_str(Html::escape(&self.docs.errors().join("; ")).as_str());
        let n = self.received.lock().unwrap().len();
        out.push_str(&format!(r#"</p><p id="done">{n} received</p>"#));
        Html::trusted(out)
    }

    async fn on_event(&mut self, _: &mut Context, event: Event) -> Result<(), ViewError> {
        Err(ViewError::unknown_event(&event))
    }

    fn upload(&mut self, name: &str) -> Option<&mut Upload> {
        (name == "docs").then_some(&mut self.docs)
    }

    async fn on_upload(&mut self, _: &mut Context, file: UploadedFile) -> Result<(), ViewError> {
        self.received.lock().unwrap().push(file);
        Ok(())
    }
}

fn views(received: &Received) -> livehtml::Views<Received> {
    LiveRoutes::new(&Live::default(), received.clone()).route::<Docs>("/docs").build()
}

#[tokio::test]
async fn the_test_client_uploads_and_the_view_gets_the_file() {
    let received = Received::default();
    let mut page = views(&received).test("/docs").await.unwrap();
    let text = "line\n".repeat(20_000);
    let sent = page.upload("docs", "notes.txt", "text/plain", text.as_bytes(), &[("folder", "7")]).await.unwrap();
    // Progress was rendered on the way (in whole percents), then the file arrived.
    assert!(sent.contains("notes.txt 32%") || sent.contains("notes.txt 33%"), "{sent}");
    assert!(sent.contains(">1 received<"), "{sent}");
    let file = received.lock().unwrap().pop().unwrap();
    assert_eq!((file.name.as_str(), file.bytes.len(), file.values.get("folder")), ("notes.txt", text.len(), Some("7")));

    // Refused before any byte: too big, a type it does not take.
    let sent = page.upload("docs", "big.txt", "text/plain", &vec![b'x'; 100_001], &[]).await.unwrap();
    assert!(sent.contains("big.txt: too big (100 KB; at most 100 KB)") && !sent.contains("lh-upload-go"), "{sent}");
    let sent = page.upload("docs", "run.exe", "application/x-msdownload", b"MZ", &[]).await.unwrap();
    assert!(sent.contains("run.exe: not a type this takes (text/plain, .md)"), "{sent}");
    assert!(page.upload("nope", "a.txt", "text/plain", b"a", &[]).await.is_err());
    assert_eq!(received.lock().unwrap().len(), 0);
}

async fn serve(received: &Received) -> (std::net::SocketAddr, String) {
    let app: Router = views(received).router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // The page's socket URL, from its first render.
    let html = reqwest_get(addr, "/docs").await;
    let connect = html.split(r#"lh-connect=""#).nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    (addr, connect)
}

async fn reqwest_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    out
}

fn chunk(id: u32, bytes: &[u8]) -> Message {
    let mut message = id.to_be_bytes().to_vec();
    message.extend_from_slice(bytes);
    Message::binary(message)
}

#[tokio::test]
async fn files_travel_in_binary_chunks_over_the_views_socket() {
    let received = Received::default();
    let (addr, connect) = serve(&received).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{connect}&client=lh")).await.unwrap();
    let offer = r#"{"upload":"docs","files":"[{\"ref\":\"f1\",\"name\":\"a.md\",\"size\":6},{\"ref\":\"f2\",\"name\":\"b.md\",\"size\":70000}]","HEADERS":{"LH-Client":"1","LH-Event":"lh:upload","LH-Ref":"1"}}"#;
    ws.send(Message::text(offer)).await.unwrap();
    let answer = next_text(&mut ws).await;
    assert!(answer.contains(r#"<template lh-upload-go="f1:1 f2:2"></template>"#), "{answer}");
    ws.send(chunk(1, b"hello!")).await.unwrap();
    let done = next_text(&mut ws).await;
    assert!(done.contains(">1 received<"), "{done}");
    assert_eq!(received.lock().unwrap()[0].bytes, b"hello!");

    // More than file 2 said it had: refused, and the page is told to stop.
    ws.send(chunk(2, &[0; 40_000])).await.unwrap();
    assert!(next_text(&mut ws).await.contains("b.md 57%"));
    ws.send(chunk(2, &[0; 40_000])).await.unwrap();
    let refused = next_text(&mut ws).await;
    assert!(
        refused.contains(r#"<template lh-upload-stop="2"></template>"#) && refused.contains("more bytes"),
        "{refused}"
    );
    // Its chunks still on their way are ignored; a chunk for a file never offered closes.
    ws.send(chunk(2, &[0; 10])).await.unwrap();
    ws.send(chunk(99, &[0; 10])).await.unwrap();
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("closed in time") {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1008);
                assert_eq!(frame.reason.as_str(), "a chunk for no file on its way");
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close, got {other:?}"),
        }
    }
}
