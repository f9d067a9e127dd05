package api

import "github.com/meridiandb/meridian/hlc"

// NewTimestamp converts an hlc.Timestamp for the wire. The empty timestamp
// gives nil, which ToHLC reads back as empty.
func NewTimestamp(ts hlc.Timestamp) *Timestamp {
	if ts.IsEmpty() {
		return nil
	}
	return &Timestamp{WallTime: ts.WallTime, Logical: ts.Logical}
}

// ToHLC converts t back to an hlc.Timestamp; nil is the empty timestamp.
func (t *Timestamp) ToHLC() hlc.Timestamp {
	if t == nil {
		return hlc.Timestamp{}
	}
	return hlc.Timestamp{WallTime: t.WallTime, Logical: t.Logical}
}

// WriteTS returns the transaction's write timestamp as an hlc.Timestamp.
func (m *TxnMeta) WriteTS() hlc.Timestamp { return m.GetWriteTimestamp().ToHLC() }

// Short renders the first 8 hex digits of the transaction ID, for errors
// and logs.
func (m *TxnMeta) Short() string {
	const hex = "0123456789abcdef"
	id := m.GetId()
	if len(id) > 4 {
		id = id[:4]
	}
	b := make([]byte, 0, 8)
	for _, c := range id {
		b = append(b, hex[c>>4], hex[c&0xf])
	}
	return string(b)
}
