package nemesis

import (
	"context"
	"fmt"
	"math/rand"

	"github.com/jepsen-go/jepsen/history"
)

// KindPacket shapes the traffic between every pair of nodes with
// Options.Packet: start-packet, then stop-packet, with the packet fault as
// the value.
const KindPacket Kind = "packet"

// packet is the packet kind at work.
type packet struct {
	n      *Nemesis
	packet *Packet // in force (perhaps in part), nil if none
}

func newPacket(n *Nemesis) (fault, error) {
	if n.net == nil {
		return nil, fmt.Errorf("nemesis: %s faults need a network fault installer", KindPacket)
	}
	return &packet{n: n}, nil
}

// packetOptions fills in DefaultPacket; every node's traffic is shaped.
func packetOptions(o *Options) error {
	if o.Packet.IsZero() {
		o.Packet = DefaultPacket
	}
	o.Packet.Nodes = nil
	return nil
}

// inject shapes the traffic; it draws nothing.
func (k *packet) inject(ctx context.Context, _ *rand.Rand) error {
	p := k.n.opts.Packet
	plan := history.Fault{Kind: string(KindPacket), Packet: &p}
	return k.n.act(ctx, FStartPacket, plan, func(ctx context.Context) (history.Fault, error) {
		k.packet = &p // even on error: part may be installed, heal it
		return plan, k.n.net.Shape(ctx, p)
	})
}

func (k *packet) heal(ctx context.Context, all bool) error {
	if k.packet == nil {
		return nil
	}
	p := *k.packet
	plan := history.Fault{Kind: string(KindPacket), Packet: &p}
	return k.n.act(ctx, FStopPacket, plan, func(ctx context.Context) (history.Fault, error) {
		err := k.n.net.Shape(ctx, Packet{})
		if err == nil {
			k.packet = nil
		}
		return plan, err
	})
}

func (k *packet) active() []string {
	if k.packet == nil {
		return nil
	}
	return []string{"packet"}
}

func (k *packet) down() []string { return nil }
