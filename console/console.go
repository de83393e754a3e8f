// Package console is the admin listener's live console: a page that shows
// each call through the SSP as it happens (each rule of the chain with its
// verdict, the decoded token, headers, timings) and each TLS handshake the
// SSP refused, fed by the proxy's journeys over server-sent events.
package console

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"sspemu/proxy"
	"sspemu/spinecall"
)

// Defaults for Options.
const (
	DefaultCapacity   = 500  // entries kept for the page
	DefaultHandshakes = 1000 // refused handshakes kept for /api/transactions
	queueLen          = 1024 // journeys waiting for the console's goroutine
	subscriberLen     = 256  // entries waiting for one page's stream
)

// Options tune a Console; the zero value is usable.
type Options struct {
	Logger *slog.Logger
	// Capacity is how many recent entries the console keeps and replays to
	// a page that opens; 0 means DefaultCapacity.
	Capacity int
	// Handshakes is how many refused TLS handshakes are kept for the admin
	// API; 0 means DefaultHandshakes.
	Handshakes int
}

// Console keeps the recent journeys and refused handshakes and streams
// them to every open page. It is a proxy.Observer whose methods never
// wait: the proxy hands each value to a bounded queue and goes on; when the
// queue is full the value is dropped (and counted), so a console that
// falls behind can cost the SSP nothing. One goroutine takes the queue,
// keeps each entry and fans it out to the pages' own bounded queues; a
// page that does not keep up is disconnected, and its EventSource
// reconnects and catches up from the kept entries. Entries are judged and
// encoded only when a page asks for them (see entry).
type Console struct {
	log        *slog.Logger
	in         chan item
	done       chan struct{}
	stopped    chan struct{}
	closeOnce  sync.Once
	dropped    atomic.Uint64 // journeys or handshakes the queue had no room for
	disconnect atomic.Uint64 // pages cut off for not keeping up
	failed     atomic.Uint64 // streams ended by a failed write: a page gone, or stuck past writeWait

	mu         sync.Mutex
	ring       []*entry // the last Capacity entries, oldest first once full
	head       int      // next slot to write in ring
	seq        uint64   // ID of the last entry
	subs       map[*subscriber]struct{}
	handshakes []proxy.Handshake // the last Handshakes refusals, oldest first
	maxHS      int
	capacity   int
	writeWait  atomic.Int64 // nanoseconds; see the constant; tests shorten it
	// epoch names this run: entry IDs restart with the process, so a page
	// that reconnects to a new run must start again, not skip IDs it saw.
	epoch  string
	closed bool
}

// item is one value from the proxy, waiting in the queue.
type item struct {
	j *proxy.Journey
	h *proxy.Handshake
	s *spinecall.Call
}

// entry is one kept row. Its summary (what the stream sends) and detail
// (what a click fetches, with the token judged claim by claim) are encoded
// the first time a page needs them, once, on that page's goroutine: with no
// page open a journey costs the console no more than keeping a pointer.
type entry struct {
	id uint64
	it item

	sumOnce, detOnce sync.Once
	summary, detail  []byte
}

// summaryJSON is the entry's row, encoded once.
func (e *entry) summaryJSON() []byte {
	e.sumOnce.Do(func() {
		switch {
		case e.it.j != nil:
			e.summary = mustJSON(journeySummary(e.id, e.it.j))
		case e.it.s != nil:
			e.summary = mustJSON(spineSummary(e.id, e.it.s))
		default:
			e.summary = mustJSON(handshakeSummary(e.id, e.it.h))
		}
	})
	return e.summary
}

// detailJSON is the entry's journey, judged and encoded once.
func (e *entry) detailJSON() []byte {
	e.detOnce.Do(func() {
		switch {
		case e.it.j != nil:
			e.detail = mustJSON(journeyDetail(e.id, e.it.j))
		case e.it.s != nil:
			e.detail = mustJSON(spineDetail(e.id, e.it.s))
		default:
			e.detail = mustJSON(handshakeDetail(e.id, e.it.h))
		}
	})
	return e.detail
}

// mustJSON encodes a value built of strings, numbers, times and headers,
// which cannot fail to encode.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("console: encode %T: %v", v, err))
	}
	return b
}

// subscriber is one open page's stream.
type subscriber struct {
	ch chan *entry // closed when the page is cut off or the console closes
}

// New starts a console; Close stops it.
func New(opt Options) *Console {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Capacity <= 0 {
		opt.Capacity = DefaultCapacity
	}
	if opt.Handshakes <= 0 {
		opt.Handshakes = DefaultHandshakes
	}
	c := &Console{
		log:      opt.Logger,
		in:       make(chan item, queueLen),
		done:     make(chan struct{}),
		stopped:  make(chan struct{}),
		ring:     make([]*entry, 0, opt.Capacity),
		subs:     map[*subscriber]struct{}{},
		maxHS:    opt.Handshakes,
		capacity: opt.Capacity,
		epoch:    strconv.FormatInt(time.Now().UnixNano(), 36),
	}
	c.writeWait.Store(int64(writeWait))
	go c.run()
	return c
}

// Journey queues a finished request for the console without waiting.
func (c *Console) Journey(j *proxy.Journey) { c.offer(item{j: j}) }

// Handshake queues a refused TLS handshake without waiting.
func (c *Console) Handshake(h *proxy.Handshake) { c.offer(item{h: h}) }

// SpineCall queues a consumer's call to SDS or PDS without waiting; it is
// the services' spinecall.Observer.
func (c *Console) SpineCall(call spinecall.Call) { c.offer(item{s: &call}) }

func (c *Console) offer(it item) {
	select {
	case c.in <- it:
	default:
		c.dropped.Add(1)
	}
}

// Dropped is how many journeys and handshakes were dropped because the
// console's queue was full.
func (c *Console) Dropped() uint64 { return c.dropped.Load() }

// Close stops the console's goroutine and ends every open stream, so the
// admin listener's shutdown does not wait on them. Values offered after
// Close are dropped.
func (c *Console) Close() {
	c.closeOnce.Do(func() {
		close(c.done)
		<-c.stopped
		c.mu.Lock()
		c.closed = true
		for s := range c.subs {
			close(s.ch)
			delete(c.subs, s)
		}
		c.mu.Unlock()
	})
}

func (c *Console) run() {
	defer close(c.stopped)
	for {
		select {
		case <-c.done:
			return
		case it := <-c.in:
			c.add(it)
		}
	}
}

// add keeps one value and fans it out.
func (c *Console) add(it item) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	e := &entry{id: c.seq, it: it}
	if len(c.ring) < cap(c.ring) {
		c.ring = append(c.ring, e)
	} else {
		c.ring[c.head] = e
		c.head = (c.head + 1) % len(c.ring)
	}
	if it.h != nil {
		if len(c.handshakes) == c.maxHS {
			c.handshakes = append(c.handshakes[:0], c.handshakes[1:]...)
		}
		c.handshakes = append(c.handshakes, *it.h)
	}
	for s := range c.subs {
		select {
		case s.ch <- e:
		default:
			// The page is not reading: cut it off rather than wait; it
			// reconnects with Last-Event-ID and catches up from the ring.
			close(s.ch)
			delete(c.subs, s)
			c.disconnect.Add(1)
		}
	}
}

// entriesLocked returns the kept entries with an ID above after, oldest first.
func (c *Console) entriesLocked(after uint64) []*entry {
	out := make([]*entry, 0, len(c.ring))
	for i := range c.ring {
		e := c.ring[(c.head+i)%len(c.ring)]
		if e.id > after {
			out = append(out, e)
		}
	}
	return out
}

// subscribe opens a stream: the kept entries after the given ID, then every
// new one. It returns nil once the console is closed.
func (c *Console) subscribe(after uint64) (*subscriber, []*entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, nil
	}
	s := &subscriber{ch: make(chan *entry, subscriberLen)}
	c.subs[s] = struct{}{}
	return s, c.entriesLocked(after)
}

// unsubscribe ends a stream the page closed.
func (c *Console) unsubscribe(s *subscriber) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.subs[s]; ok {
		delete(c.subs, s)
		close(s.ch)
	}
}

// find returns a kept entry by ID.
func (c *Console) find(id uint64) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.ring {
		if e.id == id {
			return e
		}
	}
	return nil
}

// Handshakes returns the kept TLS handshake refusals, newest first, for the
// admin API's /api/transactions (outcome tls). They live only in memory:
// a connection refused at the handshake never made a request, so it has no
// audit record.
func (c *Console) Handshakes() []proxy.Handshake {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]proxy.Handshake, len(c.handshakes))
	for i, h := range c.handshakes {
		out[len(out)-1-i] = h
	}
	return out
}
