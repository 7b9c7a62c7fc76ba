package netfault

import (
	"fmt"
	"sync"
	"time"

	"github.com/google/nftables"
)

// AgentOptions configure an Agent.
type AgentOptions struct {
	// NetNS is an open file descriptor of the network namespace to program;
	// 0 means the namespace of the calling process (the sidecar case).
	NetNS int
	// Seed seeds the random choices of the packet shaper (which packets are
	// lost, duplicated, ...); 0 means a seed from the clock.
	Seed uint64
}

// Agent installs the faults of one node in one network namespace. It is
// safe for concurrent use.
type Agent struct {
	opts AgentOptions
	nft  *nftables.Conn

	mu     sync.Mutex
	mode   queueMode
	shaper *shaper
	spec   Spec
	closed bool
}

// NewAgent returns an agent for the namespace in opts. It installs nothing
// yet; call Clear to remove what a previous agent may have left.
func NewAgent(opts AgentOptions) (*Agent, error) {
	c, err := nftables.New(nftables.WithNetNSFd(opts.NetNS))
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	if opts.Seed == 0 {
		opts.Seed = uint64(time.Now().UnixNano())
	}
	return &Agent{opts: opts, nft: c}, nil
}

// Apply replaces every fault installed by this agent with those of s. The
// nftables part is replaced in one atomic batch; applying the same Spec
// twice is harmless.
func (a *Agent) Apply(s Spec) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return fmt.Errorf("apply: agent is closed")
	}
	if s.Packet != nil {
		if a.shaper == nil {
			sh, err := newShaper(a.opts.NetNS, a.opts.Seed)
			if err != nil {
				return fmt.Errorf("apply: start packet shaper: %w", err)
			}
			a.shaper = sh
		}
		p := *s.Packet
		a.shaper.set(&p)
	}
	mode, err := programAny(a.nft, s, a.mode)
	if err != nil {
		return fmt.Errorf("apply: program nftables table %s: %w", TableName, err)
	}
	a.mode = mode
	if s.Packet == nil && a.shaper != nil {
		a.shaper.set(nil)
	}
	a.spec = s
	return nil
}

// Clear removes every fault of this agent (the whole nftables table).
func (a *Agent) Clear() error { return a.Apply(Spec{}) }

// Close clears the faults and stops the packet shaper.
func (a *Agent) Close() error {
	err := a.Clear()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	if a.shaper != nil {
		a.shaper.close()
		a.shaper = nil
	}
	return err
}

// Status is what an agent has installed and counted.
type Status struct {
	// Spec is the rule set last applied.
	Spec Spec `json:"spec"`
	// Rules are the installed nftables rules with their packet counters.
	Rules []RuleCounter `json:"rules"`
	// Shaper counts the packets the packet shaper handled.
	Shaper ShaperStats `json:"shaper"`
	// QueueMode is how shaped packets reach the agent (nft-queue or
	// xt-NFQUEUE).
	QueueMode string `json:"queue_mode"`
}

// Status reports the installed rules and their counters.
func (a *Agent) Status() (Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := Status{Spec: a.spec, QueueMode: a.mode.String()}
	if a.shaper != nil {
		st.Shaper = a.shaper.stats()
	}
	rules, err := counters(a.nft)
	if err != nil {
		return st, fmt.Errorf("status: %w", err)
	}
	st.Rules = rules
	return st, nil
}
