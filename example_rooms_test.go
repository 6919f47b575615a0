package chat_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/hubchat/chat"
)

// Serve one room on two servers of one process: two hubs with the same
// name and a MemoryBroker. With Options.Origin, clients see where each
// message came from.
func ExampleMemoryBroker() {
	broker := chat.NewMemoryBroker()
	hub1 := chat.NewHub(chat.Options{Name: "lobby", Broker: broker, Origin: "east"})
	hub2 := chat.NewHub(chat.Options{Name: "lobby", Broker: broker, Origin: "west"})
	hs1 := httptest.NewServer(chat.NewServer(hub1)) // e.g. port 8081
	hs2 := httptest.NewServer(chat.NewServer(hub2)) // e.g. port 8082
	defer hs1.Close()
	defer hs2.Close()
	defer hub1.Shutdown(context.Background())
	defer hub2.Shutdown(context.Background())

	alice := dial("ws" + strings.TrimPrefix(hs1.URL, "http") + "?username=alice")
	defer alice.Close()
	printFrames(alice, 3)
	bob := dial("ws" + strings.TrimPrefix(hs2.URL, "http") + "?username=bob")
	defer bob.Close()
	printFrames(bob, 3)
	printFrames(alice, 1)

	bob.WriteJSON(map[string]string{"type": "message", "body": "Hi from the west!"})
	printFrames(alice, 1)
	fmt.Println(hub1.Users())
	// Output:
	// {"type":"join","username":"alice"}
	// {"type":"users","users":["alice"]}
	// {"messages":[],"type":"history"}
	// {"type":"join","username":"bob"}
	// {"type":"users","users":["alice","bob"]}
	// {"messages":[],"type":"history"}
	// {"type":"join","username":"bob"}
	// {"body":"Hi from the west!","origin":"west","type":"message","username":"bob"}
	// [alice bob]
}

// Carry private messages between two rooms: the sender's hub routes a
// message to "name@8082" in OnMessage, delivering it to the other room
// with Deliver; the sender receives its copy.
func ExampleHub_Deliver() {
	other := chat.NewHub(chat.Options{Origin: "8082"})
	hub := chat.NewHub(chat.Options{Origin: "8081",
		OnMessage: func(_ *chat.Hub, id chat.Identity, m *chat.Message) error {
			name, ok := strings.CutSuffix(m.To, "@8082")
			if !ok {
				return nil // an ordinary message
			}
			err := other.Deliver(context.Background(), chat.Message{
				Username: id.Name + "@8081", Origin: "8081", To: name, Body: m.Body,
			})
			if errors.Is(err, chat.ErrNoSuchUser) {
				return fmt.Errorf("no user %s on server 8082", name) // the sender's error frame
			}
			if err != nil {
				return err
			}
			m.ToOrigin = "8082" // publish the sender's copy only
			return nil
		}})
	hs1, hs2 := httptest.NewServer(chat.NewServer(hub)), httptest.NewServer(chat.NewServer(other))
	defer hs1.Close()
	defer hs2.Close()
	defer hub.Shutdown(context.Background())
	defer other.Shutdown(context.Background())

	bob := dial("ws" + strings.TrimPrefix(hs2.URL, "http") + "?username=bob")
	defer bob.Close()
	alice := dial("ws" + strings.TrimPrefix(hs1.URL, "http") + "?username=alice")
	defer alice.Close()
	printFrames(bob, 3)
	printFrames(alice, 3)

	alice.WriteJSON(map[string]string{"type": "message", "to": "bob@8082", "body": "Hi, Bob!"})
	printFrames(bob, 1)
	printFrames(alice, 1)
	alice.WriteJSON(map[string]string{"type": "message", "to": "carol@8082", "body": "Carol?"})
	printFrames(alice, 1)
	// Output:
	// {"type":"join","username":"bob"}
	// {"type":"users","users":["bob"]}
	// {"messages":[],"type":"history"}
	// {"type":"join","username":"alice"}
	// {"type":"users","users":["alice"]}
	// {"messages":[],"type":"history"}
	// {"body":"Hi, Bob!","origin":"8081","to":"bob","type":"message","username":"alice@8081"}
	// {"body":"Hi, Bob!","to":"bob@8082","type":"message","username":"alice"}
	// {"error":"no user carol on server 8082","type":"error"}
}
