package raftgroup

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
)

// CommandID identifies a proposed command. It travels inside the log entry,
// so every replica's applier sees it: a proposer matches its pending
// proposals by ID, and an applier can recognise a command re-submitted after
// an ambiguous outcome (Idempotent Receiver).
type CommandID [8]byte

// NewCommandID returns a random command ID.
func NewCommandID() CommandID {
	var id CommandID
	binary.LittleEndian.PutUint64(id[:], rand.Uint64())
	return id
}

// IsEmpty reports whether id is the zero ID (used by entries raft itself
// writes, such as a new leader's empty entry).
func (id CommandID) IsEmpty() bool { return id == CommandID{} }

func (id CommandID) String() string { return hex.EncodeToString(id[:]) }

// Entry data layout: a version byte, the 8-byte command ID, then the
// caller's payload. An empty entry (written by raft on election) has no data.
const commandVersion = 1

const commandHeaderLen = 1 + len(CommandID{})

func encodeCommand(id CommandID, payload []byte) []byte {
	b := make([]byte, commandHeaderLen+len(payload))
	b[0] = commandVersion
	copy(b[1:], id[:])
	copy(b[commandHeaderLen:], payload)
	return b
}

var errBadCommand = errors.New("raftgroup: malformed command in log entry")

func decodeCommand(data []byte) (CommandID, []byte, error) {
	if len(data) < commandHeaderLen || data[0] != commandVersion {
		return CommandID{}, nil, errBadCommand
	}
	var id CommandID
	copy(id[:], data[1:commandHeaderLen])
	return id, data[commandHeaderLen:], nil
}
