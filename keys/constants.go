package keys

// RangeID identifies a range (and its Raft group) for the life of the
// cluster. Range IDs are allocated from RangeIDGeneratorKey and never reused.
type RangeID uint64

// Keyspace prefixes. See doc.go for the layout.
const (
	localPrefixByte  = 0x01
	metaPrefixByte   = 0x02
	systemPrefixByte = 0x03
	userPrefixByte   = 'u'

	rangeIDInfix  = 'i' // 0x01 'i': range-ID local
	keyLocalInfix = 'k' // 0x01 'k': range-local keyed by a global key
	lockInfix     = 'z' // 0x01 'z': lock table

	replicatedInfix   = 'r'
	unreplicatedInfix = 'u'
)

var (
	// MinKey is the smallest key.
	MinKey = []byte{}
	// KeyMax sorts after every addressable key; the last range ends here.
	KeyMax = []byte{0xff, 0xff}

	// LocalPrefix starts every non-addressable key; LocalMax ends them.
	LocalPrefix = []byte{localPrefixByte}
	LocalMax    = []byte{localPrefixByte + 1}

	rangeIDPrefix  = []byte{localPrefixByte, rangeIDInfix}
	keyLocalPrefix = []byte{localPrefixByte, keyLocalInfix}

	// LockTablePrefix starts every lock-table key.
	LockTablePrefix = []byte{localPrefixByte, lockInfix, 'k'}
	// LockTableMax ends the lock table.
	LockTableMax = PrefixEnd(LockTablePrefix)

	// StoreIdentKey holds a store's identity (cluster, node and store IDs).
	// It is local to the store: no range contains it.
	StoreIdentKey = []byte{localPrefixByte, 's', 'i', 'd', 'e', 'n', 't'}

	// MetaMin and MetaMax bound the meta keyspace: range descriptors keyed
	// by their end key. MetaMin is also the first addressable key (range 1
	// starts there).
	MetaMin = []byte{metaPrefixByte}
	MetaMax = []byte{metaPrefixByte + 1}

	// SystemMin and SystemMax bound the system keyspace.
	SystemMin = []byte{systemPrefixByte}
	SystemMax = []byte{systemPrefixByte + 1}

	// UserSpanStart and UserSpanEnd bound the user keyspace: every
	// UserKey(k) is in [UserSpanStart, UserSpanEnd).
	UserSpanStart = []byte{userPrefixByte}
	UserSpanEnd   = []byte{userPrefixByte + 1}
)

// Range-ID local key codes (4 bytes each, after the replicated/unreplicated
// infix).
var (
	codeRaftLog        = []byte("rftl")
	codeRaftHardState  = []byte("rfth")
	codeRaftTruncated  = []byte("rftt")
	codeRangeTombstone = []byte("rftb")

	codeAppliedState = []byte("rask")
	codeDescriptor   = []byte("rdsc")
	codeLease        = []byte("rll-")
	codeGCThreshold  = []byte("lgc-")

	codeTxnRecord = []byte("txn-")
)

// System keys.
var (
	// ClusterIDKey holds the cluster's ID, written once at bootstrap.
	ClusterIDKey = systemKey("cluster-id")
	// NodeIDGeneratorKey holds the last allocated node ID.
	NodeIDGeneratorKey = systemKey("node-idgen")
	// StoreIDGeneratorKey holds the last allocated store ID.
	StoreIDGeneratorKey = systemKey("store-idgen")
	// RangeIDGeneratorKey holds the last allocated range ID.
	RangeIDGeneratorKey = systemKey("range-idgen")
	// BootstrapVersionKey holds the cluster version written at bootstrap.
	BootstrapVersionKey = systemKey("bootstrap-version")

	nodeRecordPrefix   = systemKey("node/")
	nodeLivenessPrefix = systemKey("liveness/")
)

func systemKey(name string) []byte {
	return append([]byte{systemPrefixByte}, name...)
}
