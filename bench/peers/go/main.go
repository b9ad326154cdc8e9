// Benchmark peer: the seed's chat on Go with gorilla/websocket (the hub pattern of its chat
// example: a read loop and a write loop per client, a buffered channel between).
// Run with: PORT=8080 go run main.go
package main

import (
	"encoding/json"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

type client struct {
	conn *websocket.Conn
	send chan []byte
}

var (
	mu       sync.RWMutex
	clients  = map[*client]struct{}{}
	upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
)

func broadcast(msg []byte) {
	mu.RLock()
	defer mu.RUnlock()
	for c := range clients {
		select {
		case c.send <- msg:
		default: // slow consumer: drop it, as the gorilla chat example does
			go c.conn.Close()
		}
	}
}

func serve(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &client{conn: conn, send: make(chan []byte, 2048)}
	mu.Lock()
	clients[c] = struct{}{}
	mu.Unlock()
	go func() {
		for msg := range c.send {
			if conn.WriteMessage(websocket.TextMessage, msg) != nil {
				return
			}
		}
	}()
	defer func() {
		mu.Lock()
		delete(clients, c)
		mu.Unlock()
		conn.Close()
	}()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var msg map[string]interface{}
		if json.Unmarshal(data, &msg) != nil {
			return
		}
		msg["time"] = time.Now().Format("15:04:05")
		out, _ := json.Marshal(msg)
		broadcast(out)
	}
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/ws", serve)
	if err := http.ListenAndServe("127.0.0.1:"+port, nil); err != nil {
		panic(err)
	}
}
