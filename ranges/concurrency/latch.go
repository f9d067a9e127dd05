package concurrency

import (
	"context"
	"fmt"
	"sync"
)

// LatchManager sequences the requests of one replica over their declared
// key spans. Acquire inserts a request's latches at once, in arrival order,
// and then waits for every earlier latch that conflicts with one of them;
// Release drops them and wakes whoever waited. See the package doc for the
// invariants.
//
// A LatchManager is safe for concurrent use. The zero value is not usable;
// call NewLatchManager.
type LatchManager struct {
	mu struct {
		sync.Mutex
		seq    uint64
		reads  intervalTree
		writes intervalTree
	}
}

// NewLatchManager returns an empty LatchManager.
func NewLatchManager() *LatchManager {
	return &LatchManager{}
}

// latch is one declared span of a Guard, and its node in the interval tree
// of its access kind.
type latch struct {
	treeNode
	span LatchSpan
	g    *Guard
	seq  uint64 // unique within the manager; orders latches on one key
}

// Guard is a request's claim on its latches: returned by Acquire once all
// of them are held, and handed back to Release.
//
// With transactions, a request's guard will also hold its place in the lock
// table's wait queues; the concurrency manager that sequences a request
// through latches and then the lock table will wrap Guard rather than change
// what Acquire and Release promise.
type Guard struct {
	latches []latch
	// done is closed when the latches leave the manager: on Release, or
	// when Acquire gives up on ctx. Later requests that conflict wait on it.
	// It is made, under LatchManager.mu, by the first request that has to
	// wait for this one, so an uncontended request never makes one; once
	// set it never changes.
	done chan struct{}
	// prereqs are the earlier guards this one must wait for; set by
	// sequence, cleared once acquired or abandoned.
	prereqs []*Guard
	// mark dedupes prereqs while a later request is being sequenced
	// (the seq of that request). Guarded by LatchManager.mu.
	mark uint64
	// gone is set when the latches have left the manager. Guarded by
	// LatchManager.mu.
	gone bool
	// inline holds the latch of a single-span request, saving an
	// allocation on the most common path.
	inline [1]latch
}

// Spans returns the spans g was acquired with.
func (g *Guard) Spans() []LatchSpan {
	out := make([]LatchSpan, len(g.latches))
	for i := range g.latches {
		out[i] = g.latches[i].span
	}
	return out
}

// Acquire waits until the request declaring spans may proceed: until every
// latch that arrived earlier and conflicts with one of spans has been
// released, or abandoned by its own cancelled Acquire. Requests are served
// first come first served per conflict: a request never overtakes an
// earlier one it conflicts with, even while that one is still waiting.
//
// If ctx is done before the latches are held, Acquire removes them, so no
// later request waits for them, and returns an error wrapping ctx.Err(). A
// request that needs no waiting succeeds even with a done ctx. The spans'
// key slices must not be modified until Release.
func (m *LatchManager) Acquire(ctx context.Context, spans *SpanSet) (*Guard, error) {
	if spans == nil {
		spans = &SpanSet{}
	}
	if err := spans.validate(); err != nil {
		return nil, err
	}
	g := m.sequence(spans)
	if err := m.wait(ctx, g); err != nil {
		return nil, err
	}
	return g, nil
}

// Release drops g's latches and lets the requests waiting on them go.
// Releasing a guard twice, or a nil guard, does nothing.
func (m *LatchManager) Release(g *Guard) {
	if g == nil {
		return
	}
	m.mu.Lock()
	m.removeLocked(g)
	m.mu.Unlock()
}

// Len returns the number of latches in the manager, held or waiting.
func (m *LatchManager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.reads.n + m.mu.writes.n
}

// sequence inserts the latches for spans and records the earlier
// conflicting guards the request must wait for. It never blocks.
func (m *LatchManager) sequence(spans *SpanSet) *Guard {
	g := &Guard{}
	if len(spans.spans) == 1 {
		g.latches = g.inline[:]
	} else {
		g.latches = make([]latch, len(spans.spans))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.seq++
	mark := m.mu.seq
	addPrereq := func(l *latch) {
		if p := l.g; p.mark != mark {
			p.mark = mark
			if p.done == nil {
				p.done = make(chan struct{})
			}
			g.prereqs = append(g.prereqs, p)
		}
	}
	for i := range spans.spans {
		sp := spans.spans[i]
		if sp.Access == Write {
			m.mu.writes.overlapping(sp.Span, addPrereq)
		}
		m.mu.reads.overlapping(sp.Span, func(l *latch) {
			if sp.Access == Write && Conflicts(sp, l.span) {
				addPrereq(l)
			}
		})
		if sp.Access == Read {
			m.mu.writes.overlapping(sp.Span, func(l *latch) {
				if Conflicts(sp, l.span) {
					addPrereq(l)
				}
			})
		}
	}
	// Insert only after the scan: a request's own spans never conflict.
	for i := range g.latches {
		l := &g.latches[i]
		l.span = spans.spans[i]
		l.g = g
		m.mu.seq++
		l.seq = m.mu.seq
		if l.span.Access == Write {
			m.mu.writes.insert(l)
		} else {
			m.mu.reads.insert(l)
		}
	}
	if len(g.latches) == 0 {
		g.gone = true
	}
	return g
}

// ready reports whether every prerequisite of g has left the manager, that
// is whether g holds its latches. Used by tests between sequence and wait.
func (g *Guard) ready() bool {
	for _, p := range g.prereqs {
		select {
		case <-p.done:
		default:
			return false
		}
	}
	return true
}

// wait blocks until every prerequisite of g has left the manager, or ctx is
// done, in which case g's latches are removed.
func (m *LatchManager) wait(ctx context.Context, g *Guard) error {
	for _, p := range g.prereqs {
		select {
		case <-p.done:
			continue
		default:
		}
		select {
		case <-p.done:
		case <-ctx.Done():
			m.mu.Lock()
			m.removeLocked(g)
			m.mu.Unlock()
			g.prereqs = nil
			return fmt.Errorf("concurrency: waiting for latches: %w", ctx.Err())
		}
	}
	g.prereqs = nil // let released guards be collected
	return nil
}

func (m *LatchManager) removeLocked(g *Guard) {
	if g.gone {
		return
	}
	g.gone = true
	for i := range g.latches {
		l := &g.latches[i]
		if l.span.Access == Write {
			m.mu.writes.remove(l)
		} else {
			m.mu.reads.remove(l)
		}
	}
	if g.done != nil {
		close(g.done)
	}
}
