package raftgroup

// QueueTicks queues n ticks for a group as Tick does, even if it is
// quiesced: what a Tick that ran just before the group quiesced leaves.
func (h *Host) QueueTicks(groupID uint64, n int) {
	g, err := h.group(groupID)
	if err != nil {
		panic(err)
	}
	g.mu.Lock()
	g.mu.work.ticks += n
	g.mu.Unlock()
	h.sched.enqueue(groupID)
}

// QueuedTicks returns the ticks queued for a group and not yet taken.
func (h *Host) QueuedTicks(groupID uint64) int {
	g, err := h.group(groupID)
	if err != nil {
		panic(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mu.work.ticks
}
