package raftgroup

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"go.etcd.io/raft/v3"
)

// raftLogger adapts etcd raft's Logger to slog. Raft's informational lines
// (every election step and configuration switch, per group) go to debug: a
// node with thousands of ranges would otherwise bury its own log under them.
type raftLogger struct{ l *slog.Logger }

var _ raft.Logger = raftLogger{}

func newRaftLogger(l *slog.Logger) raft.Logger { return raftLogger{l: l} }

func (r raftLogger) log(level slog.Level, msg string) {
	if r.l.Enabled(context.Background(), level) {
		r.l.Log(context.Background(), level, msg, "component", "raft")
	}
}

func (r raftLogger) Debug(v ...any)              { r.log(slog.LevelDebug, fmt.Sprint(v...)) }
func (r raftLogger) Debugf(f string, v ...any)   { r.log(slog.LevelDebug, fmt.Sprintf(f, v...)) }
func (r raftLogger) Info(v ...any)               { r.log(slog.LevelDebug, fmt.Sprint(v...)) }
func (r raftLogger) Infof(f string, v ...any)    { r.log(slog.LevelDebug, fmt.Sprintf(f, v...)) }
func (r raftLogger) Warning(v ...any)            { r.log(slog.LevelWarn, fmt.Sprint(v...)) }
func (r raftLogger) Warningf(f string, v ...any) { r.log(slog.LevelWarn, fmt.Sprintf(f, v...)) }
func (r raftLogger) Error(v ...any)              { r.log(slog.LevelError, fmt.Sprint(v...)) }
func (r raftLogger) Errorf(f string, v ...any)   { r.log(slog.LevelError, fmt.Sprintf(f, v...)) }
func (r raftLogger) Fatal(v ...any)              { r.fatal(fmt.Sprint(v...)) }
func (r raftLogger) Fatalf(f string, v ...any)   { r.fatal(fmt.Sprintf(f, v...)) }
func (r raftLogger) Panic(v ...any)              { r.panic(fmt.Sprint(v...)) }
func (r raftLogger) Panicf(f string, v ...any)   { r.panic(fmt.Sprintf(f, v...)) }
func (r raftLogger) fatal(msg string)            { r.log(slog.LevelError, "fatal: "+msg); os.Exit(1) }
func (r raftLogger) panic(msg string)            { r.log(slog.LevelError, "panic: "+msg); panic(msg) }
