package docker

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// maxNodes is the most nodes a run's /24 network holds (.11 upwards).
const maxNodes = 200

// nodeIP returns the fixed address of the i-th node (from 0) in subnet:
// n1 is .11, n2 .12, and so on.
func nodeIP(subnet netip.Prefix, i int) netip.Addr {
	a := subnet.Addr().As4()
	a[3] = byte(11 + i)
	return netip.AddrFrom4(a)
}

// usedPrefixes returns the subnets of existing Docker networks and of the
// host's interfaces and routes, which a new network must not overlap.
func usedPrefixes(ctx context.Context, c *client.Client) ([]netip.Prefix, error) {
	var used []netip.Prefix
	nets, err := c.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range nets.Items {
		for _, cfg := range n.IPAM.Config {
			if cfg.Subnet.IsValid() {
				used = append(used, cfg.Subnet)
			}
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if p, err := netip.ParsePrefix(ipn.String()); err == nil && p.Addr().Is4() {
					used = append(used, p.Masked())
				}
			}
		}
	}
	used = append(used, hostRoutes()...)
	return used, nil
}

// hostRoutes reads the IPv4 routes of /proc/net/route, except the default
// route.
func hostRoutes() []netip.Prefix {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []netip.Prefix
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 8 {
			continue
		}
		dst, err1 := hex.DecodeString(fs[1])
		mask, err2 := hex.DecodeString(fs[7])
		if err1 != nil || err2 != nil || len(dst) != 4 || len(mask) != 4 {
			continue
		}
		// The kernel prints these in host (little-endian) byte order.
		d := binary.LittleEndian.Uint32(dst)
		m := binary.LittleEndian.Uint32(mask)
		if m == 0 {
			continue
		}
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], d)
		ones, _ := net.IPMask(binary.BigEndian.AppendUint32(nil, m)).Size()
		out = append(out, netip.PrefixFrom(netip.AddrFrom4(a), ones).Masked())
	}
	return out
}

// overlaps reports whether p overlaps any of used.
func overlaps(p netip.Prefix, used []netip.Prefix) bool {
	for _, u := range used {
		if u.Overlaps(p) {
			return true
		}
	}
	return false
}

// candidateSubnet returns the k-th /24 candidate for a run: subnets of
// 10.100.0.0/14 .. spread by a hash of the run id so that concurrent runs
// rarely try the same one first.
func candidateSubnet(runID string, k int) netip.Prefix {
	h := fnv.New32a()
	h.Write([]byte(runID))
	n := (h.Sum32() + uint32(k)*7919) % (64 * 256) // 10.100.0.0 - 10.163.255.0
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + n/256), byte(n % 256), 0}), 24)
}

// createNetwork creates the run's bridge network on a free /24, retrying
// on address-pool collisions with networks created concurrently.
func createNetwork(ctx context.Context, c *client.Client, name, runID string) (id string, subnet netip.Prefix, err error) {
	used, err := usedPrefixes(ctx, c)
	if err != nil {
		return "", netip.Prefix{}, err
	}
	var lastErr error
	for k, tries := 0, 0; k < 4096 && tries < 16; k++ {
		p := candidateSubnet(runID, k)
		if overlaps(p, used) {
			continue
		}
		tries++
		gw := p.Addr().As4()
		gw[3] = 1
		res, err := c.NetworkCreate(ctx, name, client.NetworkCreateOptions{
			Driver: "bridge",
			IPAM: &network.IPAM{
				Driver: "default",
				Config: []network.IPAMConfig{{Subnet: p, Gateway: netip.AddrFrom4(gw)}},
			},
			Labels: labels(runID, "network", ""),
		})
		if err == nil {
			return res.ID, p, nil
		}
		lastErr = err
		if !strings.Contains(strings.ToLower(err.Error()), "overlap") {
			return "", netip.Prefix{}, fmt.Errorf("create network %s: %w", name, err)
		}
		used = append(used, p)
	}
	return "", netip.Prefix{}, fmt.Errorf("create network %s: no free subnet: %w", name, lastErr)
}
