package keys

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
)

// Pretty renders a key for logs and errors:
//
//	/Local/RangeID/3/u/RaftLog/7     /Local/RangeID/3/r/Descriptor
//	/Local/Lock/User/"k"             /Local/Txn/User/"k"/<txn id hex>
//	/Meta/User/"k"                   /System/node-idgen
//	/User/"k"                        /Min, /Max
//
// Bytes it cannot parse are shown quoted after the last part it understood.
func Pretty(k []byte) string {
	var sb strings.Builder
	prettyTo(&sb, k)
	return sb.String()
}

// PrettyEngineKey renders an engine key as Pretty(key) or Pretty(key)@ts.
func PrettyEngineKey(b []byte) string {
	k, ts, err := DecodeEngineKey(b)
	if err != nil {
		return "<bad engine key " + strconv.Quote(string(b)) + ">"
	}
	if ts.IsEmpty() {
		return Pretty(k)
	}
	return Pretty(k) + "@" + ts.String()
}

var rangeIDCodeNames = map[string]string{
	string(codeRaftLog):        "RaftLog",
	string(codeRaftHardState):  "RaftHardState",
	string(codeRaftTruncated):  "RaftTruncatedState",
	string(codeRangeTombstone): "RangeTombstone",
	string(codeAppliedState):   "AppliedState",
	string(codeDescriptor):     "Descriptor",
	string(codeLease):          "Lease",
	string(codeGCThreshold):    "GCThreshold",
}

func prettyTo(sb *strings.Builder, k []byte) {
	switch {
	case len(k) == 0:
		sb.WriteString("/Min")
	case bytes.Equal(k, KeyMax):
		sb.WriteString("/Max")
	case bytes.HasPrefix(k, rangeIDPrefix):
		sb.WriteString("/Local/RangeID")
		id, repl, code, rest, err := DecodeRangeIDKey(k)
		if err != nil {
			rest := k[len(rangeIDPrefix):]
			if len(rest) >= 8 {
				sb.WriteString("/" + strconv.FormatUint(binary.BigEndian.Uint64(rest), 10))
				rest = rest[8:]
			}
			quoteRest(sb, rest)
			return
		}
		sb.WriteString("/" + strconv.FormatUint(uint64(id), 10))
		if repl {
			sb.WriteString("/r/")
		} else {
			sb.WriteString("/u/")
		}
		if name, ok := rangeIDCodeNames[string(code)]; ok {
			sb.WriteString(name)
		} else {
			sb.WriteString(strconv.Quote(string(code)))
		}
		if bytes.Equal(code, codeRaftLog) && !repl && len(rest) == 8 {
			sb.WriteString("/" + strconv.FormatUint(binary.BigEndian.Uint64(rest), 10))
			return
		}
		quoteRest(sb, rest)
	case bytes.HasPrefix(k, LockTablePrefix):
		sb.WriteString("/Local/Lock")
		prettyTo(sb, k[len(LockTablePrefix):])
	case bytes.HasPrefix(k, keyLocalPrefix):
		key, code, rest, err := decodeKeyLocal(k)
		if err != nil {
			sb.WriteString("/Local/Key")
			quoteRest(sb, k[len(keyLocalPrefix):])
			return
		}
		if bytes.Equal(code, codeTxnRecord) {
			sb.WriteString("/Local/Txn")
		} else {
			sb.WriteString("/Local/Key/" + strconv.Quote(string(code)))
		}
		prettyTo(sb, key)
		sb.WriteString("/" + strconv.Quote(string(rest)))
	case k[0] == localPrefixByte:
		sb.WriteString("/Local")
		quoteRest(sb, k[1:])
	case k[0] == metaPrefixByte:
		sb.WriteString("/Meta")
		prettyTo(sb, k[1:])
	case k[0] == systemPrefixByte:
		sb.WriteString("/System")
		if bytes.HasPrefix(k, nodeRecordPrefix) && len(k) == len(nodeRecordPrefix)+8 {
			sb.WriteString("/node/" + strconv.FormatUint(binary.BigEndian.Uint64(k[len(nodeRecordPrefix):]), 10))
			return
		}
		if bytes.HasPrefix(k, nodeLivenessPrefix) && len(k) == len(nodeLivenessPrefix)+8 {
			sb.WriteString("/liveness/" + strconv.FormatUint(binary.BigEndian.Uint64(k[len(nodeLivenessPrefix):]), 10))
			return
		}
		sb.WriteString("/" + strconv.Quote(string(k[1:])))
	case k[0] == userPrefixByte:
		sb.WriteString("/User/")
		sb.WriteString(strconv.Quote(string(k[1:])))
	default:
		quoteRest(sb, k)
	}
}

func quoteRest(sb *strings.Builder, rest []byte) {
	if len(rest) > 0 {
		sb.WriteString("/" + strconv.Quote(string(rest)))
	}
}
