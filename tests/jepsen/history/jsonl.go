package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// maxLine bounds one event line; a longer line is reported, not buffered
// without limit.
const maxLine = 64 << 20

// Read parses a whole history.jsonl stream and validates it (see the package
// invariants). Errors name the 1-based line. A last line without its newline
// that does not parse is reported as truncated.
func Read(r io.Reader) ([]Event, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var events []Event
	line := 0
	open := map[int]*Event{} // process -> outstanding invocation
	for {
		raw, err := br.ReadSlice('\n')
		var full []byte
		if errors.Is(err, bufio.ErrBufferFull) {
			full = append(full, raw...)
			for errors.Is(err, bufio.ErrBufferFull) {
				if len(full) > maxLine {
					return nil, fmt.Errorf("history: line %d: longer than %d bytes", line+1, maxLine)
				}
				raw, err = br.ReadSlice('\n')
				full = append(full, raw...)
			}
			raw = full
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("history: line %d: %w", line+1, err)
		}
		atEOF := errors.Is(err, io.EOF)
		if len(raw) == 0 && atEOF {
			return events, nil
		}
		line++
		text := bytes.TrimSpace(raw)
		if len(text) == 0 {
			if atEOF {
				return events, nil
			}
			return nil, fmt.Errorf("history: line %d: empty line", line)
		}
		var ev Event
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		if derr := dec.Decode(&ev); derr != nil {
			if atEOF && !bytes.HasSuffix(raw, []byte("\n")) {
				return nil, fmt.Errorf("history: line %d: truncated event (the file ends mid-line): %w", line, derr)
			}
			return nil, fmt.Errorf("history: line %d: %w", line, derr)
		}
		if dec.More() {
			return nil, fmt.Errorf("history: line %d: more than one JSON value on the line", line)
		}
		if !bytes.Contains(text, []byte(`"index"`)) {
			return nil, fmt.Errorf("history: line %d: missing index", line)
		}
		if verr := ev.validate(); verr != nil {
			return nil, fmt.Errorf("history: line %d (index %d): %w", line, ev.Index, verr)
		}
		if n := len(events); n > 0 && ev.Index <= events[n-1].Index {
			return nil, fmt.Errorf("history: line %d: index %d does not follow index %d (indexes must strictly increase)",
				line, ev.Index, events[n-1].Index)
		}
		events = append(events, ev)
		if perr := checkPairing(open, &events[len(events)-1]); perr != nil {
			return nil, fmt.Errorf("history: line %d (index %d): %w", line, ev.Index, perr)
		}
		if atEOF {
			return events, nil
		}
	}
}

// checkPairing enforces one outstanding invocation per process and that a
// completion matches it.
func checkPairing(open map[int]*Event, ev *Event) error {
	inv, ok := open[ev.Process]
	if ev.Type == Invoke {
		if ok {
			return fmt.Errorf("process %d invokes %s while its invocation at index %d is still open",
				ev.Process, ev.F, inv.Index)
		}
		open[ev.Process] = ev
		return nil
	}
	if !ok {
		if ev.Process == NemesisProcess {
			return nil // a nemesis may log a bare info event
		}
		return fmt.Errorf("process %d completes %s with no open invocation", ev.Process, ev.F)
	}
	if inv.F != ev.F {
		return fmt.Errorf("process %d completes f=%s but its open invocation (index %d) is f=%s",
			ev.Process, ev.F, inv.Index, inv.F)
	}
	delete(open, ev.Process)
	return nil
}

// ReadFile reads and validates a history.jsonl file.
func ReadFile(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	evs, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return evs, nil
}

// Writer appends events to a history.jsonl stream, one per line. It is safe
// for concurrent use; callers that need realtime order allocate indexes with
// NextIndex under the same lock as the write (Record does both).
type Writer struct {
	mu struct {
		sync.Mutex
		w    *bufio.Writer
		next int64
		err  error
	}
}

// NewWriter returns a Writer on w. Call Flush (periodically and at the end).
func NewWriter(w io.Writer) *Writer {
	hw := &Writer{}
	hw.mu.w = bufio.NewWriter(w)
	return hw
}

// Record assigns the next index to ev, writes it and returns the index.
func (hw *Writer) Record(ev Event) (int64, error) {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	ev.Index = hw.mu.next
	if err := hw.writeLocked(&ev); err != nil {
		return 0, err
	}
	hw.mu.next++
	return ev.Index, nil
}

// Write writes ev with the index it already has (it must exceed the last).
func (hw *Writer) Write(ev Event) error {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	if ev.Index < hw.mu.next {
		return fmt.Errorf("history: index %d written after index %d", ev.Index, hw.mu.next-1)
	}
	if err := hw.writeLocked(&ev); err != nil {
		return err
	}
	hw.mu.next = ev.Index + 1
	return nil
}

func (hw *Writer) writeLocked(ev *Event) error {
	if hw.mu.err != nil {
		return hw.mu.err
	}
	if err := ev.validate(); err != nil {
		return fmt.Errorf("history: event %d: %w", ev.Index, err)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("history: event %d: %w", ev.Index, err)
	}
	b = append(b, '\n')
	if _, err := hw.mu.w.Write(b); err != nil {
		hw.mu.err = fmt.Errorf("history: %w", err)
		return hw.mu.err
	}
	return nil
}

// Flush writes buffered events to the underlying writer.
func (hw *Writer) Flush() error {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	if hw.mu.err != nil {
		return hw.mu.err
	}
	if err := hw.mu.w.Flush(); err != nil {
		hw.mu.err = fmt.Errorf("history: %w", err)
	}
	return hw.mu.err
}

// WriteEvents writes a whole history (indexes as given) to w.
func WriteEvents(w io.Writer, events []Event) error {
	hw := NewWriter(w)
	for _, ev := range events {
		if err := hw.Write(ev); err != nil {
			return err
		}
	}
	return hw.Flush()
}
