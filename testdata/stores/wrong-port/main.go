// Command wrong-port is a test store that makes one classic first-store
// mistake: it listens on port 8081 while its jepsen.yaml says port: 8080.
// Otherwise it is a correct one-node store. TestMistakes in cmd/jepsen
// checks that jepsen does not pass it and says what to fix.
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"sync"
)

func main() {
	var mu sync.Mutex
	data := map[string]string{}
	http.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {})
	http.HandleFunc("GET /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		v, ok := data[r.PathValue("key")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"value":%s}`, v)
	})
	http.HandleFunc("PUT /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		var b struct{ Value json.RawMessage }
		if json.NewDecoder(r.Body).Decode(&b) != nil || b.Value == nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		data[r.PathValue("key")] = string(b.Value)
	})
	http.HandleFunc("POST /kv/{key}/cas", func(w http.ResponseWriter, r *http.Request) {
		var b struct{ From, To json.RawMessage }
		if json.NewDecoder(r.Body).Decode(&b) != nil || b.From == nil || b.To == nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch cur, ok := data[r.PathValue("key")]; {
		case !ok:
			http.NotFound(w, r)
		case cur != string(b.From):
			http.Error(w, "the value is "+cur, http.StatusConflict)
		default:
			data[r.PathValue("key")] = string(b.To)
		}
	})
	log.Fatal(http.ListenAndServe(":8081", nil)) // the mistake: jepsen.yaml says port: 8080
}
