package ipvsadm

import "net/netip"

// ipvsadm sorts services with libipvs's ipvs_cmp_services and real servers
// with ipvs_cmp_dests, through glibc's qsort. Both comparators subtract
// unsigned 32-bit values into an int, so addresses (and fwmarks) more than
// 2^31 apart compare the wrong way round: 10.0.0.1 sorts after 192.168.0.1.
// They are reproduced here with that wrap-around, and run through the same
// top-down merge sort as glibc's qsort, so that even the order such a
// non-transitive comparison gives comes out as ipvsadm's.

// addrWords is the address as the kernel's union nf_inet_addr holds it,
// in host order: IPv4 in the first word.
func addrWords(a netip.Addr) [4]uint32 {
	var w [4]uint32
	if a.Is4() {
		b := a.As4()
		w[0] = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		return w
	}
	b := a.As16()
	for i := range w {
		w[i] = uint32(b[4*i])<<24 | uint32(b[4*i+1])<<16 | uint32(b[4*i+2])<<8 | uint32(b[4*i+3])
	}
	return w
}

func cmpAddr(a1, a2 netip.Addr) int32 {
	w1, w2 := addrWords(a1), addrWords(a2)
	if !a1.Is6() {
		return int32(w1[0] - w2[0])
	}
	var r int32
	for i := 0; r == 0 && i < 4; i++ {
		r = int32(w1[i] - w2[i])
	}
	return r
}

func family(a netip.Addr) int32 {
	if a.Is6() {
		return afInet6
	}
	return afInet
}

// cmpServices is ipvs_cmp_services.
func cmpServices(s1, s2 *Service) int32 {
	if r := int32(s1.FWMark - s2.FWMark); r != 0 {
		return r
	}
	if r := family(s1.Addr) - family(s2.Addr); r != 0 {
		return r
	}
	if r := int32(s1.Protocol) - int32(s2.Protocol); r != 0 {
		return r
	}
	if r := cmpAddr(s1.Addr, s2.Addr); r != 0 {
		return r
	}
	return int32(s1.Port) - int32(s2.Port)
}

// cmpDests is ipvs_cmp_dests.
func cmpDests(d1, d2 *Dest) int32 {
	if r := cmpAddr(d1.Addr, d2.Addr); r != 0 {
		return r
	}
	return int32(d1.Port) - int32(d2.Port)
}

// msort is glibc's msort_with_tmp: halve (the first half the smaller),
// sort each half, merge taking from the first half while cmp <= 0.
func msort[T any](b []T, cmp func(a, b *T) int32) {
	n := len(b)
	if n <= 1 {
		return
	}
	n1 := n / 2
	msort(b[:n1], cmp)
	msort(b[n1:], cmp)
	tmp := make([]T, 0, n)
	i, j := 0, n1
	for i < n1 && j < n {
		if cmp(&b[i], &b[j]) <= 0 {
			tmp = append(tmp, b[i])
			i++
		} else {
			tmp = append(tmp, b[j])
			j++
		}
	}
	tmp = append(tmp, b[i:n1]...)
	tmp = append(tmp, b[j:]...)
	copy(b, tmp)
}

// sortedServices returns the services in listing order, each with its
// dests in listing order; the state is not changed.
func sortedServices(svcs []Service, noSort bool) []Service {
	out := make([]Service, len(svcs))
	copy(out, svcs)
	if noSort {
		return out
	}
	msort(out, cmpServices)
	for i := range out {
		d := make([]Dest, len(out[i].Dests))
		copy(d, out[i].Dests)
		msort(d, cmpDests)
		out[i].Dests = d
	}
	return out
}
