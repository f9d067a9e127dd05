package history

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// MOp is one micro-operation of a list-append transaction: an append of Val
// to the list at Key, or a read of the list at Key (Read, valid when HasRead;
// an empty, non-nil slice is a read of a missing key).
type MOp struct {
	F       string // "append" or "r"
	Key     string
	Val     int64
	Read    []int64
	HasRead bool
}

// Micro-op names.
const (
	AppendF = "append"
	ReadF   = "r"
)

// MarshalJSON encodes m as ["append",k,v] or ["r",k,null|[...]].
func (m MOp) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	kb, _ := json.Marshal(m.Key)
	b.WriteString(`["`)
	b.WriteString(m.F)
	b.WriteString(`",`)
	b.Write(kb)
	b.WriteByte(',')
	switch m.F {
	case AppendF:
		b.WriteString(strconv.FormatInt(m.Val, 10))
	case ReadF:
		if !m.HasRead {
			b.WriteString("null")
			break
		}
		b.WriteByte('[')
		for i, v := range m.Read {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(v, 10))
		}
		b.WriteByte(']')
	default:
		return nil, fmt.Errorf("history: unknown micro-op %q", m.F)
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

// UnmarshalJSON decodes the form MarshalJSON writes.
func (m *MOp) UnmarshalJSON(data []byte) error {
	var parts []json.RawMessage
	if err := json.Unmarshal(data, &parts); err != nil {
		return fmt.Errorf("micro-op %s: want [f, key, value]: %w", data, err)
	}
	if len(parts) != 3 {
		return fmt.Errorf("micro-op %s: want 3 elements [f, key, value], got %d", data, len(parts))
	}
	*m = MOp{}
	if err := json.Unmarshal(parts[0], &m.F); err != nil {
		return fmt.Errorf("micro-op %s: f must be a string", data)
	}
	if err := json.Unmarshal(parts[1], &m.Key); err != nil {
		return fmt.Errorf("micro-op %s: key must be a string", data)
	}
	switch m.F {
	case AppendF:
		if err := json.Unmarshal(parts[2], &m.Val); err != nil || isNull(parts[2]) {
			return fmt.Errorf("micro-op %s: append value must be an integer", data)
		}
	case ReadF:
		if isNull(parts[2]) {
			return nil
		}
		if err := json.Unmarshal(parts[2], &m.Read); err != nil {
			return fmt.Errorf("micro-op %s: read value must be null or a list of integers", data)
		}
		if m.Read == nil {
			m.Read = []int64{}
		}
		m.HasRead = true
	default:
		return fmt.Errorf("micro-op %s: unknown f %q (want append or r)", data, m.F)
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// DecodeTxn decodes a list-append transaction value.
func DecodeTxn(raw json.RawMessage) ([]MOp, error) {
	var mops []MOp
	if err := json.Unmarshal(raw, &mops); err != nil {
		return nil, err
	}
	return mops, nil
}

// RegisterOp is a decoded register operation. Read results and CAS operands
// use Value (Present false means the key is absent / null).
type RegisterOp struct {
	Key string
	// Value: the written value (write), the value read (read, ok only), or
	// the new value (cas).
	Value   int64
	Present bool
	// Old is the expected value of a cas.
	Old int64
}

// DecodeRegister decodes a register value for f read, write or cas.
func DecodeRegister(f string, raw json.RawMessage) (RegisterOp, error) {
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil || len(parts) != 2 {
		return RegisterOp{}, fmt.Errorf("register %s value %s: want [key, value]", f, raw)
	}
	var op RegisterOp
	if err := json.Unmarshal(parts[0], &op.Key); err != nil {
		return RegisterOp{}, fmt.Errorf("register %s value %s: key must be a string", f, raw)
	}
	switch f {
	case "read", "write":
		if isNull(parts[1]) {
			if f == "write" {
				return RegisterOp{}, fmt.Errorf("register write value %s: value must be an integer", raw)
			}
			return op, nil
		}
		if err := json.Unmarshal(parts[1], &op.Value); err != nil {
			return RegisterOp{}, fmt.Errorf("register %s value %s: value must be an integer or null", f, raw)
		}
		op.Present = true
	case "cas":
		var on []int64
		if err := json.Unmarshal(parts[1], &on); err != nil || len(on) != 2 {
			return RegisterOp{}, fmt.Errorf("register cas value %s: want [key, [old, new]]", raw)
		}
		op.Old, op.Value, op.Present = on[0], on[1], true
	default:
		return RegisterOp{}, fmt.Errorf("register: unknown f %q (want read, write or cas)", f)
	}
	return op, nil
}

// Transfer is a bank transfer.
type Transfer struct {
	From   int   `json:"from"`
	To     int   `json:"to"`
	Amount int64 `json:"amount"`
}

// DecodeBalances decodes a bank read result: account number -> balance.
// A null balance is reported as absent from the map and listed in nils.
func DecodeBalances(raw json.RawMessage) (bal map[string]int64, nils []string, err error) {
	var m map[string]*int64
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, nil, fmt.Errorf("bank read value %s: want {\"account\": balance, ...}: %w", raw, err)
	}
	bal = make(map[string]int64, len(m))
	for k, v := range m {
		if v == nil {
			nils = append(nils, k)
			continue
		}
		bal[k] = *v
	}
	return bal, nils, nil
}

// DecodeInts decodes a set read result (or any list of integers).
func DecodeInts(raw json.RawMessage) ([]int64, error) {
	var xs []int64
	if err := json.Unmarshal(raw, &xs); err != nil {
		return nil, fmt.Errorf("value %s: want a list of integers: %w", raw, err)
	}
	return xs, nil
}

// DecodeInt decodes a single integer (a set add).
func DecodeInt(raw json.RawMessage) (int64, error) {
	var x int64
	if isNull(raw) {
		return 0, fmt.Errorf("value is null, want an integer")
	}
	if err := json.Unmarshal(raw, &x); err != nil {
		return 0, fmt.Errorf("value %s: want an integer: %w", raw, err)
	}
	return x, nil
}
