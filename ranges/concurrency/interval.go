package concurrency

import "bytes"

// intervalTree is a treap of latches ordered by (start key, seq), each node
// augmented with the highest end bound in its subtree, so that finding the
// latches overlapping a span costs O(log n + k) expected for k results
// instead of a scan of every latch. Nodes are the latches themselves (the
// tree fields are embedded in latch), so inserting allocates nothing.
//
// A treap keeps itself balanced in expectation by giving each node a random
// priority and keeping the tree a heap on it. The priorities come from a
// xorshift generator owned by the tree; all methods are called under the
// LatchManager's mutex.
type intervalTree struct {
	root *latch
	n    int
	rnd  uint64
}

// treeNode holds the per-node fields of the interval tree.
type treeNode struct {
	left, right *latch
	prio        uint64
	maxEnd      bound // the highest end bound in this subtree
}

func (t *intervalTree) nextPrio() uint64 {
	// xorshift64*: cheap, and good enough to balance a treap.
	if t.rnd == 0 {
		t.rnd = 0x9E3779B97F4A7C15
	}
	t.rnd ^= t.rnd >> 12
	t.rnd ^= t.rnd << 25
	t.rnd ^= t.rnd >> 27
	return t.rnd * 0x2545F4914F6CDD1D
}

// keyLess orders latches by start key, then by sequence number, so that
// every latch has a distinct position.
func keyLess(a, b *latch) bool {
	if c := bytes.Compare(a.span.Key, b.span.Key); c != 0 {
		return c < 0
	}
	return a.seq < b.seq
}

func (l *latch) fix() {
	m := l.span.end()
	if l.left != nil && m.less(l.left.maxEnd) {
		m = l.left.maxEnd
	}
	if l.right != nil && m.less(l.right.maxEnd) {
		m = l.right.maxEnd
	}
	l.maxEnd = m
}

func (t *intervalTree) insert(l *latch) {
	l.left, l.right = nil, nil
	l.prio = t.nextPrio()
	l.fix()
	t.root = insertAt(t.root, l)
	t.n++
}

func insertAt(root, l *latch) *latch {
	if root == nil {
		return l
	}
	if keyLess(l, root) {
		root.left = insertAt(root.left, l)
		if root.left.prio > root.prio {
			root = rotateRight(root)
		}
	} else {
		root.right = insertAt(root.right, l)
		if root.right.prio > root.prio {
			root = rotateLeft(root)
		}
	}
	root.fix()
	return root
}

func rotateRight(x *latch) *latch {
	y := x.left
	x.left = y.right
	y.right = x
	x.fix()
	y.fix()
	return y
}

func rotateLeft(x *latch) *latch {
	y := x.right
	x.right = y.left
	y.left = x
	x.fix()
	y.fix()
	return y
}

// remove deletes l, which must be in the tree.
func (t *intervalTree) remove(l *latch) {
	t.root = removeAt(t.root, l)
	l.left, l.right = nil, nil
	t.n--
}

func removeAt(root, l *latch) *latch {
	if root == nil {
		// Not reached for a latch in the tree; tolerated so that a bug
		// cannot corrupt the tree further.
		return nil
	}
	if root == l {
		return join(root.left, root.right)
	}
	if keyLess(l, root) {
		root.left = removeAt(root.left, l)
	} else {
		root.right = removeAt(root.right, l)
	}
	root.fix()
	return root
}

// join merges two treaps where every key of a sorts before every key of b.
func join(a, b *latch) *latch {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case a.prio > b.prio:
		a.right = join(a.right, b)
		a.fix()
		return a
	default:
		b.left = join(a, b.left)
		b.fix()
		return b
	}
}

// overlapping calls fn for every latch whose span overlaps s, in key order.
func (t *intervalTree) overlapping(s Span, fn func(*latch)) {
	visit(t.root, s.Key, s.end(), fn)
}

func visit(n *latch, start []byte, end bound, fn func(*latch)) {
	for n != nil {
		// Nothing in this subtree ends after start: no overlap here.
		if !before(start, n.maxEnd) {
			return
		}
		visit(n.left, start, end, fn)
		// n and its whole right subtree start at or after end.
		if !before(n.span.Key, end) {
			return
		}
		if before(start, n.span.end()) {
			fn(n)
		}
		n = n.right // tail call by hand
	}
}
