// Package system holds the driven adapters for the machine itself: the
// wall clock and the id source.
package system

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

	"github.com/tiyn/tiyn/ports"
)

// Clock is the wall clock, in UTC and truncated to microseconds (the
// precision both stores keep, so a value read back equals the value
// written).
type Clock struct{}

var _ ports.Clock = Clock{}

// Now returns the current time.
func (Clock) Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// IDs makes ids like "dep_01jd8r5m6a1b2c3d4e5f6g7h8j": a prefix, then 26
// Crockford base32 characters of 48 bits of milliseconds and 80 bits of
// randomness (the ULID layout). Within one process ids are strictly
// increasing: in the same millisecond the random part is incremented, so id
// order is creation order and ids make good cursors.
type IDs struct {
	mu     sync.Mutex
	lastMS uint64
	last   [10]byte
}

var _ ports.IDs = (*IDs)(nil)

const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// NewID returns a new id with the prefix.
func (g *IDs) NewID(prefix string) string {
	var b [16]byte
	g.mu.Lock()
	ms := uint64(time.Now().UnixMilli())
	if ms <= g.lastMS {
		ms = g.lastMS
		increment(&g.last)
	} else {
		g.lastMS = ms
		if _, err := rand.Read(g.last[:]); err != nil {
			panic("system.IDs: crypto/rand failed: " + err.Error())
		}
		g.last[0] &= 0x7f // leave room to increment within one millisecond
	}
	var msb [8]byte
	binary.BigEndian.PutUint64(msb[:], ms)
	copy(b[:6], msb[2:])
	copy(b[6:], g.last[:])
	g.mu.Unlock()

	out := make([]byte, 0, len(prefix)+1+26)
	out = append(out, prefix...)
	out = append(out, '_')
	return string(appendBase32(out, b))
}

func increment(b *[10]byte) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i]++
		if b[i] != 0 {
			return
		}
	}
}

// appendBase32 encodes 128 bits as 26 Crockford characters, most
// significant first, so the text sorts like the bytes.
func appendBase32(dst []byte, b [16]byte) []byte {
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	// 130 bits of room: two leading zero bits, then 128 bits.
	for i := 25; i >= 0; i-- {
		shift := uint(i * 5)
		var v uint64
		switch {
		case shift >= 64:
			v = hi >> (shift - 64)
		case shift > 59:
			v = lo>>shift | hi<<(64-shift)
		default:
			v = lo >> shift
		}
		dst = append(dst, crockford[v&31])
	}
	return dst
}
