// Benchmark peer: the seed's chat over Server-Sent Events on Go's net/http: streams at GET
// /sse (a buffered channel and a writer per stream, flushed after each event), messages POSTed
// to /post and sent to every stream. Run with: PORT=8080 go run main.go
package main

import (
	"encoding/json"
	"net/http"
	"os"
	"sync"
	"time"
)

var (
	mu      sync.RWMutex
	streams = map[chan []byte]struct{}{}
)

func sse(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "no streaming", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write([]byte(": open\n\n"))
	flusher.Flush()
	ch := make(chan []byte, 2048)
	mu.Lock()
	streams[ch] = struct{}{}
	mu.Unlock()
	defer func() {
		mu.Lock()
		delete(streams, ch)
		mu.Unlock()
	}()
	for {
		select {
		case <-r.Context().Done():
			return
		case event := <-ch:
			if _, err := w.Write(event); err != nil {
				return
			}
			// Everything already queued goes in the same flush.
			for n := len(ch); n > 0; n-- {
				if _, err := w.Write(<-ch); err != nil {
					return
				}
			}
			flusher.Flush()
		}
	}
}

func post(w http.ResponseWriter, r *http.Request) {
	var msg map[string]any
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	msg["time"] = time.Now().Format("15:04:05")
	data, _ := json.Marshal(msg)
	event := append(append([]byte("data: "), data...), '\n', '\n')
	mu.RLock()
	for ch := range streams {
		select {
		case ch <- event:
		default: // a stream that fell this far behind misses the message
		}
	}
	mu.RUnlock()
	w.WriteHeader(http.StatusNoContent)
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/sse", sse)
	http.HandleFunc("/post", post)
	if err := http.ListenAndServe("127.0.0.1:"+port, nil); err != nil {
		panic(err)
	}
}
