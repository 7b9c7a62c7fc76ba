package netfault

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// nfnetlink_queue protocol (linux/netfilter/nfnetlink_queue.h).
const (
	nfqnlMsgPacket  = 0
	nfqnlMsgVerdict = 1
	nfqnlMsgConfig  = 2

	nfqaPacketHdr  = 1
	nfqaVerdictHdr = 2
	nfqaMark       = 3
	nfqaPayload    = 10

	nfqaCfgCmd    = 1
	nfqaCfgParams = 2
	nfqaCfgMaxLen = 3
	nfqaCfgMask   = 4
	nfqaCfgFlags  = 5

	nfqnlCfgCmdBind   = 1
	nfqnlCopyPacket   = 2
	nfqaCfgFFailOpen  = 1
	nfAccept          = 1
	nfDrop            = 0
	queueMaxLen       = 4096
	maxPacketCopySize = 0xffff
)

// shaper reads the packets the output rules queue and releases them the way
// the current Packet says: late, twice, corrupted or never.
type shaper struct {
	conn   *netlink.Conn
	rawFD  int // raw IPv4 socket for duplicates, marked bypassMark
	params atomic.Pointer[Packet]

	mu  sync.Mutex
	rng *rand.Rand

	sched   chan *held
	done    chan struct{}
	wg      sync.WaitGroup
	closeMu sync.Once

	// Counters, for tests and status.
	seen, dropped, duplicated, corrupted, delayed atomic.Uint64
}

// held is a packet waiting for its verdict.
type held struct {
	at      time.Time
	seq     uint64
	id      uint32
	payload []byte // non-nil: replace the packet with this (corruption)
	dup     []byte // non-nil: also send this copy
	dst     netip.Addr
}

type heldHeap []*held

func (h heldHeap) Len() int { return len(h) }
func (h heldHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h heldHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *heldHeap) Push(x any)   { *h = append(*h, x.(*held)) }
func (h *heldHeap) Pop() (x any) { old := *h; x = old[len(old)-1]; *h = old[:len(old)-1]; return x }
func (h heldHeap) peek() *held   { return h[0] }
func (h *heldHeap) push(x *held) { heap.Push(h, x) }
func (h *heldHeap) pop() *held   { return heap.Pop(h).(*held) }

// nfgen returns struct nfgenmsg for queue QueueNum.
func nfgen() []byte {
	b := []byte{unix.AF_UNSPEC, 0 /* NFNETLINK_V0 */, 0, 0}
	binary.BigEndian.PutUint16(b[2:], QueueNum)
	return b
}

// newShaper binds queue QueueNum in the network namespace nsFD (0: the
// calling thread's) and starts releasing packets.
func newShaper(nsFD int, seed uint64) (*shaper, error) {
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsFD})
	if err != nil {
		return nil, fmt.Errorf("dial nfnetlink: %w", err)
	}
	s := &shaper{conn: conn, rawFD: -1, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		sched: make(chan *held, 1024), done: make(chan struct{})}
	fail := func(err error) (*shaper, error) {
		conn.Close()
		if s.rawFD >= 0 {
			unix.Close(s.rawFD)
		}
		return nil, err
	}
	_ = conn.SetReadBuffer(8 << 20)
	_ = conn.SetOption(netlink.NoENOBUFS, true)
	cmd := []byte{nfqnlCfgCmdBind, 0, 0, 0}
	params := binary.BigEndian.AppendUint32(nil, maxPacketCopySize)
	params = append(params, nfqnlCopyPacket)
	flags := binary.BigEndian.AppendUint32(nil, nfqaCfgFFailOpen)
	for _, attrs := range [][]netlink.Attribute{
		{{Type: nfqaCfgCmd, Data: cmd}},
		{{Type: nfqaCfgParams, Data: params},
			{Type: nfqaCfgMaxLen, Data: binary.BigEndian.AppendUint32(nil, queueMaxLen)},
			{Type: nfqaCfgMask, Data: flags}, {Type: nfqaCfgFlags, Data: flags}},
	} {
		data, err := netlink.MarshalAttributes(attrs)
		if err != nil {
			return fail(err)
		}
		msg := netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_QUEUE<<8 | nfqnlMsgConfig),
				Flags: netlink.Request | netlink.Acknowledge},
			Data: append(nfgen(), data...),
		}
		if _, err := conn.Execute(msg); err != nil {
			return fail(fmt.Errorf("configure nfqueue %d: %w", QueueNum, err))
		}
	}
	err = inNetNS(nsFD, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		s.rawFD = fd
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, bypassMark); err != nil {
			return fmt.Errorf("raw socket mark: %w", err)
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	s.wg.Add(2)
	go s.receive()
	go s.release()
	return s, nil
}

// inNetNS runs f on a thread in the network namespace nsFD (0: here).
func inNetNS(nsFD int, f func() error) error {
	if nsFD <= 0 {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		// The thread is left locked on purpose if it cannot get back to
		// its own namespace: Go then discards it.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(netns.NsHandle(nsFD)); err != nil {
			errc <- fmt.Errorf("enter netns: %w", err)
			return
		}
		err = f()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// set replaces the shaping parameters; nil lets every packet through.
func (s *shaper) set(p *Packet) { s.params.Store(p) }

func (s *shaper) close() {
	s.closeMu.Do(func() {
		close(s.done)
		s.conn.Close()
		s.wg.Wait()
		unix.Close(s.rawFD)
	})
}

func (s *shaper) receive() {
	defer s.wg.Done()
	for {
		msgs, err := s.conn.Receive()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, unix.ENOBUFS) {
				continue
			}
			var opErr *netlink.OpError
			if errors.As(err, &opErr) && !errors.Is(err, unix.EBADF) {
				continue // an error answer to one verdict; keep going
			}
			return
		}
		for _, m := range msgs {
			if m.Header.Type != netlink.HeaderType(unix.NFNL_SUBSYS_QUEUE<<8|nfqnlMsgPacket) || len(m.Data) < 4 {
				continue
			}
			s.handle(m.Data[4:])
		}
	}
}

// handle decides the fate of one queued packet.
func (s *shaper) handle(attrs []byte) {
	ad, err := netlink.NewAttributeDecoder(attrs)
	if err != nil {
		return
	}
	var id uint32
	var payload []byte
	haveID := false
	for ad.Next() {
		switch ad.Type() {
		case nfqaPacketHdr:
			if b := ad.Bytes(); len(b) >= 4 {
				id, haveID = binary.BigEndian.Uint32(b), true
			}
		case nfqaPayload:
			payload = ad.Bytes()
		}
	}
	if !haveID {
		return
	}
	s.seen.Add(1)
	p := s.params.Load()
	if p == nil || len(payload) < 20 {
		s.verdict(id, nfAccept, nil)
		return
	}
	h := &held{id: id, at: time.Now()}
	h.dst, _ = netip.AddrFromSlice(payload[16:20])
	s.mu.Lock()
	roll := func(pct float64) bool { return pct > 0 && s.rng.Float64()*100 < pct }
	lost := roll(p.Loss)
	corrupt := roll(p.Corrupt)
	dup := roll(p.Duplicate)
	d := time.Duration(p.Delay)
	if p.Jitter > 0 {
		d += time.Duration(s.rng.Int64N(2*int64(p.Jitter)+1)) - time.Duration(p.Jitter)
	}
	if p.Delay > 0 && roll(p.Reorder) {
		d = 0
	}
	bit := 0
	ihl := int(payload[0]&0x0f) * 4
	if corrupt && len(payload) > ihl && ihl >= 20 {
		bit = ihl*8 + s.rng.IntN((len(payload)-ihl)*8)
	} else {
		corrupt = false
	}
	s.mu.Unlock()
	if lost {
		s.dropped.Add(1)
		s.verdict(id, nfDrop, nil)
		return
	}
	if dup {
		s.duplicated.Add(1)
		h.dup = append([]byte(nil), payload...)
	}
	if corrupt {
		s.corrupted.Add(1)
		h.payload = append([]byte(nil), payload...)
		h.payload[bit/8] ^= 1 << (bit % 8)
	}
	if d <= 0 {
		s.emit(h)
		return
	}
	s.delayed.Add(1)
	h.at = h.at.Add(d)
	select {
	case s.sched <- h:
	case <-s.done:
	}
}

// release sends the verdicts of held packets when their time comes.
func (s *shaper) release() {
	defer s.wg.Done()
	var q heldHeap
	var seq uint64
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if len(q) > 0 {
			timer.Reset(time.Until(q.peek().at))
		}
		select {
		case <-s.done:
			return
		case h := <-s.sched:
			seq++
			h.seq = seq
			q.push(h)
		case <-timer.C:
		}
		now := time.Now()
		for len(q) > 0 && !q.peek().at.After(now) {
			s.emit(q.pop())
		}
	}
}

// emit gives h its accept verdict and sends its duplicate, if any.
func (s *shaper) emit(h *held) {
	s.verdict(h.id, nfAccept, h.payload)
	if h.dup != nil && h.dst.Is4() {
		sa := &unix.SockaddrInet4{Addr: h.dst.As4()}
		_ = unix.Sendto(s.rawFD, h.dup, 0, sa)
	}
}

func (s *shaper) verdict(id uint32, v uint32, payload []byte) {
	hdr := binary.BigEndian.AppendUint32(nil, v)
	hdr = binary.BigEndian.AppendUint32(hdr, id)
	attrs := []netlink.Attribute{{Type: nfqaVerdictHdr, Data: hdr}}
	if payload != nil {
		attrs = append(attrs, netlink.Attribute{Type: nfqaPayload, Data: payload})
	}
	data, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return
	}
	_, _ = s.conn.Send(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_QUEUE<<8 | nfqnlMsgVerdict),
			Flags: netlink.Request},
		Data: append(nfgen(), data...),
	})
}

// ShaperStats counts what the packet shaper did since the agent started.
type ShaperStats struct {
	Seen       uint64 `json:"seen"`
	Dropped    uint64 `json:"dropped"`
	Duplicated uint64 `json:"duplicated"`
	Corrupted  uint64 `json:"corrupted"`
	Delayed    uint64 `json:"delayed"`
}

func (s *shaper) stats() ShaperStats {
	return ShaperStats{Seen: s.seen.Load(), Dropped: s.dropped.Load(), Duplicated: s.duplicated.Load(),
		Corrupted: s.corrupted.Load(), Delayed: s.delayed.Load()}
}
