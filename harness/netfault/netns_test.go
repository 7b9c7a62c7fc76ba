package netfault

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// The tests in this file build two network namespaces joined by a veth
// pair, a: 10.77.0.1 (+ 10.77.0.11, standing for the harness's gateway) and
// b: 10.77.0.2, and run a real Agent in them.

var (
	ipA  = netip.MustParseAddr("10.77.0.1")
	ipA2 = netip.MustParseAddr("10.77.0.11")
	ipB  = netip.MustParseAddr("10.77.0.2")
)

func needNetNS(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("network namespace tests need root (CAP_SYS_ADMIN, CAP_NET_ADMIN) and CI is set")
		}
		t.Skip("network namespace tests need root")
	}
}

// newNS creates an anonymous network namespace, closed (and so destroyed)
// when the test ends.
func newNS(t *testing.T) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Fatalf("new netns: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatalf("back to the original netns: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

type pair struct{ a, b netns.NsHandle }

func newPair(t *testing.T) pair {
	t.Helper()
	needNetNS(t)
	p := pair{a: newNS(t), b: newNS(t)}
	ha, err := netlink.NewHandleAt(p.a)
	if err != nil {
		t.Fatal(err)
	}
	defer ha.Close()
	hb, err := netlink.NewHandleAt(p.b)
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "va"}, PeerName: "vb",
		PeerNamespace: netlink.NsFd(int(p.b))}
	if err := ha.LinkAdd(veth); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	setup := func(h *netlink.Handle, name string, addrs ...string) {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			addr, _ := netlink.ParseAddr(a)
			if err := h.AddrAdd(l, addr); err != nil {
				t.Fatalf("addr %s: %v", a, err)
			}
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		lo, _ := h.LinkByName("lo")
		_ = h.LinkSetUp(lo)
	}
	setup(ha, "va", "10.77.0.1/24", "10.77.0.11/24")
	setup(hb, "vb", "10.77.0.2/24")
	// Until both ends are up and each side knows the other's MAC address,
	// the first datagrams wait in the kernel's ARP queue, for a second or
	// more if the first ARP request went out on a link not yet up, and then
	// land in a later subtest. Wait for the links and pin the neighbours.
	la, lb := waitUp(t, ha, "va"), waitUp(t, hb, "vb")
	pin := func(h *netlink.Handle, l netlink.Link, peer netlink.Link, ips ...netip.Addr) {
		for _, ip := range ips {
			n := &netlink.Neigh{LinkIndex: l.Attrs().Index, Family: netlink.FAMILY_V4,
				State: netlink.NUD_PERMANENT, IP: ip.AsSlice(), HardwareAddr: peer.Attrs().HardwareAddr}
			if err := h.NeighSet(n); err != nil {
				t.Fatalf("neighbour %s on %s: %v", ip, l.Attrs().Name, err)
			}
		}
	}
	pin(ha, la, lb, ipB)
	pin(hb, lb, la, ipA, ipA2)
	return p
}

// waitUp waits until the named link in h's namespace is operationally up.
func waitUp(t *testing.T, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if l.Attrs().OperState == netlink.OperUp {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("link %s still %v after 5s", name, l.Attrs().OperState)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// in runs f with the calling goroutine's thread in ns; sockets made in f
// stay in ns.
func in(t *testing.T, ns netns.NsHandle, f func()) {
	t.Helper()
	if err := inNetNS(int(ns), func() error { f(); return nil }); err != nil {
		t.Fatal(err)
	}
}

func newAgent(t *testing.T, ns netns.NsHandle) *Agent {
	t.Helper()
	a, err := NewAgent(AgentOptions{NetNS: int(ns), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close agent: %v", err)
		}
		assertNoTable(t, ns)
	})
	return a
}

func assertNoTable(t *testing.T, ns netns.NsHandle) {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == TableName {
			t.Errorf("table %s left behind", TableName)
		}
	}
}

// udpListener listens on port in ns and counts datagrams by payload.
type udpListener struct {
	conn *net.UDPConn
	got  chan string
}

func listenUDP(t *testing.T, ns netns.NsHandle, addr netip.Addr, port int) *udpListener {
	t.Helper()
	var l udpListener
	var err error
	in(t, ns, func() {
		l.conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, uint16(port))))
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = l.conn.SetReadBuffer(4 << 20)
	l.got = make(chan string, 10000)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, err := l.conn.Read(buf)
			if err != nil {
				close(l.got)
				return
			}
			l.got <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { l.conn.Close() })
	return &l
}

// collect returns what arrives until done holds of it and settle more has
// passed (to catch what should not arrive), or until max has passed. Waiting
// for the expected datagrams rather than a fixed time keeps a loaded machine
// from failing the test; tag each batch uniquely so that a straggler from an
// earlier batch is never counted in a later one.
func (l *udpListener) collect(max, settle time.Duration, done func([]string) bool) []string {
	var out []string
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	var settled <-chan time.Time
	if done(out) {
		settled = time.After(settle)
	}
	for {
		select {
		case s, ok := <-l.got:
			if !ok {
				return out
			}
			out = append(out, s)
			if settled == nil && done(out) {
				settled = time.After(settle)
			}
		case <-settled:
			return out
		case <-deadline.C:
			return out
		}
	}
}

// atLeast is a done function for collect: n datagrams of each tag.
func atLeast(n int, tags ...string) func([]string) bool {
	return func(msgs []string) bool {
		for _, tag := range tags {
			if count(msgs, tag) < n {
				return false
			}
		}
		return true
	}
}

// only returns the messages with tag.
func only(msgs []string, tag string) []string {
	var out []string
	for _, m := range msgs {
		if count([]string{m}, tag) == 1 {
			out = append(out, m)
		}
	}
	return out
}

// sendUDP sends n numbered datagrams from src in ns to dst:port.
func sendUDP(t *testing.T, ns netns.NsHandle, src, dst netip.Addr, port, n int, tag string) {
	t.Helper()
	var conn *net.UDPConn
	var err error
	in(t, ns, func() {
		conn, err = net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)),
			net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, uint16(port))))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := 0; i < n; i++ {
		if _, err := fmt.Fprintf(conn, "%s-%04d", tag, i); err != nil {
			t.Fatal(err)
		}
	}
}

func count(msgs []string, tag string) int {
	n := 0
	for _, m := range msgs {
		if len(m) > len(tag) && m[:len(tag)+1] == tag+"-" {
			n++
		}
	}
	return n
}

func TestDropIsDirectionalAndBetweenNodesOnly(t *testing.T) {
	p := newPair(t)
	onB := listenUDP(t, p.b, ipB, 9000)
	onA := listenUDP(t, p.a, ipA, 9000)
	agentB := newAgent(t, p.b)

	cases := []struct {
		name string
		spec Spec
		// datagrams expected at b from a, at b from a's second address
		// (the "gateway"), at a from b
		aToB, a2ToB, bToA bool
	}{
		{"no fault", Spec{}, true, true, true},
		{"b drops from a", Spec{DropFrom: []netip.Addr{ipA}}, false, true, true},
		{"same spec again", Spec{DropFrom: []netip.Addr{ipA}}, false, true, true},
		{"b drops from a2 only", Spec{DropFrom: []netip.Addr{ipA2}}, true, false, true},
		{"healed", Spec{}, true, true, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := agentB.Apply(tc.spec); err != nil {
				t.Fatal(err)
			}
			tagA, tagA2, tagB := fmt.Sprintf("a%d", i), fmt.Sprintf("a2.%d", i), fmt.Sprintf("b%d", i)
			sendUDP(t, p.a, ipA, ipB, 9000, 20, tagA)
			sendUDP(t, p.a, ipA2, ipB, 9000, 20, tagA2)
			sendUDP(t, p.b, ipB, ipA, 9000, 20, tagB)
			var expectAtB []string
			if tc.aToB {
				expectAtB = append(expectAtB, tagA)
			}
			if tc.a2ToB {
				expectAtB = append(expectAtB, tagA2)
			}
			atB := onB.collect(5*time.Second, 200*time.Millisecond, atLeast(20, expectAtB...))
			atA := onA.collect(5*time.Second, 50*time.Millisecond, atLeast(20, tagB))
			check := func(what string, got int, want bool) {
				if want && got != 20 || !want && got != 0 {
					t.Errorf("%s: %d of 20 datagrams arrived, want %v", what, got, map[bool]string{true: "all", false: "none"}[want])
				}
			}
			check("a -> b", count(atB, tagA), tc.aToB)
			check("a2 -> b", count(atB, tagA2), tc.a2ToB)
			check("b -> a", count(atA, tagB), tc.bToA)
			st, err := agentB.Status()
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Rules) != len(tc.spec.DropFrom) {
				t.Errorf("status shows %d rules, want %d: %+v", len(st.Rules), len(tc.spec.DropFrom), st.Rules)
			}
			for _, r := range st.Rules {
				if r.Packets < 20 {
					t.Errorf("rule %+v counted fewer than the 20 dropped packets", r)
				}
			}
		})
	}
}

// echoUDP answers every datagram on addr:port in ns with the same bytes.
func echoUDP(t *testing.T, ns netns.NsHandle, addr netip.Addr, port int) {
	t.Helper()
	var conn *net.UDPConn
	var err error
	in(t, ns, func() {
		conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, uint16(port))))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			conn.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
}

// rtt measures the median round trip of n UDP pings from a to b.
func rtt(t *testing.T, ns netns.NsHandle, src, dst netip.Addr, port, n int) time.Duration {
	t.Helper()
	var conn *net.UDPConn
	var err error
	in(t, ns, func() {
		conn, err = net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)),
			net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, uint16(port))))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var rtts []time.Duration
	buf := make([]byte, 64)
	for i := 0; i < n; i++ {
		start := time.Now()
		fmt.Fprintf(conn, "ping-%d", i)
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			t.Fatal(err)
		}
		rtts = append(rtts, time.Since(start))
	}
	if len(rtts) == 0 {
		t.Fatal("no ping came back")
	}
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	return rtts[len(rtts)/2]
}

func TestPacketDelay(t *testing.T) {
	p := newPair(t)
	echoUDP(t, p.b, ipB, 9100)
	agentA := newAgent(t, p.a)
	base := rtt(t, p.a, ipA, ipB, 9100, 10)
	for _, delay := range []time.Duration{20 * time.Millisecond, 80 * time.Millisecond} {
		spec := Spec{Packet: &Packet{Targets: []netip.Addr{ipB}, Delay: Duration(delay)}}
		if err := agentA.Apply(spec); err != nil {
			t.Fatal(err)
		}
		got := rtt(t, p.a, ipA, ipB, 9100, 10)
		t.Logf("delay %v: rtt %v (baseline %v)", delay, got, base)
		if extra := got - base; extra < delay*8/10 || extra > delay*12/10 {
			t.Errorf("delay %v: round trip grew by %v, want within 20%%", delay, extra)
		}
		// Traffic not toward a target (from the second address to a
		// listener on a itself) is not shaped.
	}
	if err := agentA.Clear(); err != nil {
		t.Fatal(err)
	}
	if got := rtt(t, p.a, ipA, ipB, 9100, 10); got > base+5*time.Millisecond {
		t.Errorf("after clear rtt %v, baseline %v", got, base)
	}
	st, _ := agentA.Status()
	if st.Shaper.Delayed < 20 {
		t.Errorf("shaper delayed %d packets, want >= 20", st.Shaper.Delayed)
	}
	t.Logf("queue mode %s, shaper %+v", st.QueueMode, st.Shaper)
}

func TestPacketLossDuplicateCorruptReorder(t *testing.T) {
	p := newPair(t)
	onB := listenUDP(t, p.b, ipB, 9200)
	agentA := newAgent(t, p.a)
	const n = 400
	cases := []struct {
		name     string
		pkt      Packet
		min, max int // datagrams expected at b
		reorder  bool
	}{
		{"loss 100", Packet{Loss: 100}, 0, 0, false},
		{"loss 50", Packet{Loss: 50}, n * 35 / 100, n * 65 / 100, false},
		{"duplicate 100", Packet{Duplicate: 100}, 2 * n, 2 * n, false},
		{"corrupt 100", Packet{Corrupt: 100}, 0, 0, false},
		{"reorder 50 with delay", Packet{Delay: Duration(30 * time.Millisecond), Reorder: 50}, n, n, true},
		{"jitter", Packet{Delay: Duration(20 * time.Millisecond), Jitter: Duration(15 * time.Millisecond)}, n, n, true},
		{"none", Packet{}, n, n, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pkt := tc.pkt
			pkt.Targets = []netip.Addr{ipB}
			if err := agentA.Apply(Spec{Packet: &pkt}); err != nil {
				t.Fatal(err)
			}
			tag := fmt.Sprintf("x%d", i)
			sendUDP(t, p.a, ipA, ipB, 9200, n, tag)
			// Stop early once the most that may arrive has; then wait a
			// little for any extra.
			got := only(onB.collect(3*time.Second, 400*time.Millisecond, atLeast(tc.max, tag)), tag)
			if c := len(got); c < tc.min || c > tc.max {
				t.Errorf("%d datagrams arrived, want %d..%d", c, tc.min, tc.max)
			}
			ordered := sort.StringsAreSorted(got)
			if tc.reorder && ordered {
				t.Errorf("datagrams arrived in order, want some reordered")
			}
			if !tc.reorder && tc.min > 0 && !ordered && tc.pkt.Duplicate == 0 {
				t.Errorf("datagrams reordered without a delay")
			}
		})
	}
}

func TestParseSpec(t *testing.T) {
	cases := []struct {
		in      string
		wantErr string
	}{
		{`{}`, ""},
		{`{"drop_from":["10.0.0.1","10.0.0.2"]}`, ""},
		{`{"packet":{"targets":["10.0.0.2"],"delay":"100ms","jitter":"50ms","loss":20}}`, ""},
		{`{"drop_from":["::1"]}`, "not an IPv4 address"},
		{`{"drop_from":["nope"]}`, "fault spec"},
		{`{"packet":{"targets":[]}}`, "no targets"},
		{`{"packet":{"targets":["10.0.0.2"],"loss":101}}`, "not a percentage"},
		{`{"packet":{"targets":["10.0.0.2"],"delay":"1h"}}`, "exceeds"},
		{`{"packet":{"targets":["10.0.0.2"],"delay":"fast"}}`, "bad duration"},
		{`{"dorp_from":[]}`, "unknown field"},
		{`{} {}`, "trailing data"},
	}
	for _, tc := range cases {
		_, err := ParseSpec([]byte(tc.in))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case tc.wantErr != "" && (err == nil || !contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one containing %q", tc.in, err, tc.wantErr)
		}
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}

func FuzzParseSpec(f *testing.F) {
	f.Add([]byte(`{"drop_from":["10.0.0.1"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec(data)
		if err != nil {
			if contains(err.Error(), "\n") {
				t.Errorf("multi-line error %q", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Errorf("ParseSpec accepted an invalid spec: %v", err)
		}
		// A valid spec survives a JSON round trip unchanged.
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := ParseSpec(b)
		if err != nil || !s.Equal(s2) {
			t.Errorf("round trip of %s: %+v, %v", b, s2, err)
		}
	})
}
