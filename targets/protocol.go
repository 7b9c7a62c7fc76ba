package targets

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/jepsen-go/jepsen/history"
)

// Conn is one client's connection to one node in a client protocol. It is
// safe for concurrent use by the client threads.
type Conn interface {
	// Invoke performs the invocation op (f read, write, cas or add) and
	// returns its completion: a copy of op with Type ok, fail or info and
	// Value and Error set, as the protocol maps the store's answer. ctx's
	// deadline is the op's timeout. Only what surely did not take effect
	// may be fail.
	Invoke(ctx context.Context, op history.Op) history.Op
	// Ready returns nil when the node serves clients. An error says why
	// not; one that wraps ErrNeverReady means waiting longer cannot help
	// (a ready path that answers 404), and the run stops at once.
	Ready(ctx context.Context) error
	// Close releases the connection's resources.
	Close() error
}

// LeaderConn is a Conn that can ask its node who leads the cluster.
type LeaderConn interface {
	Conn
	// Leader returns the name of the node this node believes leads
	// ("n3"), and false when it does not say.
	Leader(ctx context.Context) (string, bool)
}

// ErrNeverReady marks a readiness error that waiting cannot cure.
var ErrNeverReady = errors.New("will never be ready")

// NeverReady wraps err so that errors.Is(err, ErrNeverReady) holds.
func NeverReady(err error) error { return &neverReady{err} }

type neverReady struct{ err error }

func (e *neverReady) Error() string        { return e.err.Error() }
func (e *neverReady) Unwrap() error        { return e.err }
func (e *neverReady) Is(target error) bool { return target == ErrNeverReady }

// Permanent tells a backend's readiness wait to stop at once.
func (e *neverReady) Permanent() bool { return true }

// DialConfig is what a protocol needs to reach one node.
type DialConfig struct {
	// Node is the node's name ("n2"), stamped on completions and used in
	// error messages.
	Node string
	// Addr is where this process reaches the node's client port
	// ("127.0.0.1:49153").
	Addr string
	// Port is the client port inside the node (jepsen.yaml `port`), for
	// error messages: users know it, not Addr's.
	Port int
	// Ready is jepsen.yaml's `ready` path (protocols that have no paths
	// ignore it).
	Ready string
	// Concurrency is how many ops may be in flight to the node at once.
	Concurrency int
	// Options are the protocol's options, already checked by CheckOptions.
	Options map[string]string
}

// Protocol is a client protocol: how the harness talks to a store's nodes.
// A protocol lives in one file or package that calls Register from init;
// targets/protocols imports every such package.
type Protocol struct {
	// Name is what jepsen.yaml's `protocol` says ("http").
	Name string
	// Options documents each key the protocol accepts in
	// `protocol_options` and --protocol-option: key -> one line saying
	// what it does and which values it takes.
	Options map[string]string
	// Check, if not nil, validates the options' values (the keys are
	// already known); its error names the key and the values allowed.
	Check func(opts map[string]string) error
	// Dial returns a connection to one node. It must not block on the
	// network: the node may not be up yet (Ready tells).
	Dial func(cfg DialConfig) (Conn, error)
}

var (
	registryMu sync.RWMutex
	registry   = map[string]Protocol{}
)

// Register adds a protocol. It panics on an empty or duplicate name or a nil
// Dial: a programming error found at start-up.
func Register(p Protocol) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if p.Name == "" || p.Dial == nil {
		panic("targets.Register: a protocol needs a name and Dial")
	}
	if _, dup := registry[p.Name]; dup {
		panic("targets.Register: protocol " + p.Name + " registered twice")
	}
	registry[p.Name] = p
}

// Lookup returns the protocol registered under name.
func Lookup(name string) (Protocol, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	p, ok := registry[name]
	return p, ok
}

// ProtocolNames lists the registered protocols, sorted.
func ProtocolNames() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// OptionKeys lists the option keys p accepts, sorted.
func (p Protocol) OptionKeys() []string {
	keys := make([]string, 0, len(p.Options))
	for k := range p.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// OptionError is a protocol option that is unknown or has a bad value.
type OptionError struct {
	// Key is the option's name.
	Key string
	// Msg says what is wrong and what is expected.
	Msg string
}

func (e *OptionError) Error() string { return e.Msg }

// CheckOptions returns an *OptionError naming the first unknown key of opts
// (in sorted order) and the keys p knows, or p.Check's verdict on the
// values.
func (p Protocol) CheckOptions(opts map[string]string) error {
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := p.Options[k]; !ok {
			known := "it takes no options"
			if ks := p.OptionKeys(); len(ks) > 0 {
				known = "it knows: " + strings.Join(ks, ", ")
			}
			return &OptionError{Key: k, Msg: fmt.Sprintf("protocol %s has no option %q; %s", p.Name, k, known)}
		}
	}
	if p.Check != nil {
		return p.Check(opts)
	}
	return nil
}

// OneOf checks that opts[key], if set, is one of values: a helper for
// Protocol.Check. Its error is an *OptionError.
func OneOf(opts map[string]string, key string, values ...string) error {
	v, ok := opts[key]
	if !ok || slices.Contains(values, v) {
		return nil
	}
	return &OptionError{Key: key, Msg: fmt.Sprintf("option %s=%q: expected one of %s", key, v, strings.Join(values, ", "))}
}

// MergeOptions returns file's options overridden by flags (KEY=VALUE
// entries, as --protocol-option gives them). A flag without = is an error.
func MergeOptions(file map[string]string, flags []string) (map[string]string, error) {
	out := make(map[string]string, len(file)+len(flags))
	for k, v := range file {
		out[k] = v
	}
	for _, kv := range flags {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--protocol-option %q: expected KEY=VALUE", kv)
		}
		out[k] = v
	}
	return out, nil
}
