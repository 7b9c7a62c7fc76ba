package netfault

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"
)

// TableName is the nftables table (family ip) that holds every rule the
// agent installs. Nothing else in the namespace is touched.
const TableName = "jepsen"

// QueueNum is the NFQUEUE number the agent reads shaped packets from.
const QueueNum = 4242

// bypassMark marks the duplicates the agent sends itself, so that they are
// not queued again.
const bypassMark = 0x6a65

// queueMode says how a rule hands packets to userspace.
type queueMode int

const (
	queueNative queueMode = iota // nft "queue" expression (CONFIG_NFT_QUEUE)
	queueCompat                  // xtables NFQUEUE target through nft_compat
)

func (m queueMode) String() string {
	if m == queueCompat {
		return "xt-NFQUEUE"
	}
	return "nft-queue"
}

var table = &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}

// program replaces the whole jepsen table with the rules of s in one
// netlink batch, which the kernel applies atomically.
func program(c *nftables.Conn, s Spec, mode queueMode) error {
	// add + delete + add: deleting a table that does not exist would fail
	// the batch, adding one that exists does not.
	c.AddTable(table)
	c.DelTable(table)
	if s.IsZero() {
		return c.Flush()
	}
	c.AddTable(table)
	prio := nftables.ChainPriorityRef(-300)
	accept := nftables.ChainPolicyAccept
	if len(s.DropFrom) > 0 {
		in := c.AddChain(&nftables.Chain{Name: "input", Table: table, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookInput, Priority: prio, Policy: &accept})
		for _, a := range sorted(s.DropFrom) {
			c.AddRule(&nftables.Rule{Table: table, Chain: in, Exprs: []expr.Any{
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a.AsSlice()},
				&expr.Counter{},
				&expr.Verdict{Kind: expr.VerdictDrop},
			}})
		}
	}
	if s.Packet != nil {
		out := c.AddChain(&nftables.Chain{Name: "output", Table: table, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookOutput, Priority: prio, Policy: &accept})
		c.AddRule(&nftables.Rule{Table: table, Chain: out, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, bypassMark)},
			&expr.Verdict{Kind: expr.VerdictAccept},
		}})
		for _, a := range sorted(s.Packet.Targets) {
			c.AddRule(&nftables.Rule{Table: table, Chain: out, Exprs: []expr.Any{
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a.AsSlice()},
				&expr.Counter{},
				queueExpr(mode),
			}})
		}
	}
	return c.Flush()
}

// queueExpr hands the packet to queue QueueNum; with the bypass flag the
// kernel lets packets through when no agent listens, so a dead agent heals
// instead of cutting the node off.
func queueExpr(mode queueMode) expr.Any {
	if mode == queueNative {
		return &expr.Queue{Num: QueueNum, Flag: expr.QueueFlagBypass}
	}
	// struct xt_NFQ_info_v3 { u16 queuenum; u16 queues_total; u16 flags; }
	// in host byte order, padded to 8 bytes; flags 1 = NFQ_FLAG_BYPASS.
	info := make([]byte, 8)
	binary.NativeEndian.PutUint16(info[0:], QueueNum)
	binary.NativeEndian.PutUint16(info[2:], 1)
	binary.NativeEndian.PutUint16(info[4:], 1)
	u := xt.Unknown(info)
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &u}
}

// programAny programs s, trying the native queue expression first and the
// xtables target if the kernel lacks nft_queue. It returns the mode that
// worked so that later calls go straight to it.
func programAny(c *nftables.Conn, s Spec, mode queueMode) (queueMode, error) {
	err := program(c, s, mode)
	if err == nil || s.Packet == nil || mode == queueCompat {
		return mode, err
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
		if err2 := program(c, s, queueCompat); err2 == nil {
			return queueCompat, nil
		} else {
			return mode, fmt.Errorf("nft queue: %v; xt NFQUEUE: %w", err, err2)
		}
	}
	return mode, err
}

// RuleCounter is the packet counter of one installed rule.
type RuleCounter struct {
	// Chain is "input" (drops) or "output" (shaped packets).
	Chain string `json:"chain"`
	// Addr is the source (input) or destination (output) the rule matches.
	Addr netip.Addr `json:"addr"`
	// Packets is the number of packets the rule matched so far.
	Packets uint64 `json:"packets"`
}

// counters lists the counters of the rules currently installed; nil when
// the table does not exist.
func counters(c *nftables.Conn) ([]RuleCounter, error) {
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	var out []RuleCounter
	for _, ch := range chains {
		if ch.Table.Name != TableName {
			continue
		}
		rules, err := c.GetRules(table, ch)
		if err != nil {
			return nil, fmt.Errorf("list rules of %s: %w", ch.Name, err)
		}
		for _, r := range rules {
			var rc RuleCounter
			ok := false
			for _, e := range r.Exprs {
				switch e := e.(type) {
				case *expr.Cmp:
					if a, isAddr := netip.AddrFromSlice(e.Data); isAddr && len(e.Data) == 4 {
						rc.Addr, ok = a, true
					}
				case *expr.Counter:
					rc.Packets = e.Packets
				}
			}
			if ok {
				rc.Chain = ch.Name
				out = append(out, rc)
			}
		}
	}
	return out, nil
}
