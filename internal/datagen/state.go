package datagen

import (
	"encoding/binary"
	"math"
)

// A service is one LocalStack service with a persisted store.
type service struct {
	name     string
	resource string   // the kind of resource its store holds
	attrs    []string // attribute names of those resources
	private  bool     // holds secrets: the store is written with mode 0600
}

var services = []service{
	{"sqs", "queue", []string{"VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "RedrivePolicy"}, false},
	{"sns", "topic", []string{"DisplayName", "Policy", "DeliveryPolicy", "SubscriptionsConfirmed"}, false},
	{"lambda", "function", []string{"Runtime", "Handler", "MemorySize", "Timeout", "CodeSha256"}, false},
	{"iam", "role", []string{"AssumeRolePolicyDocument", "Path", "MaxSessionDuration"}, true},
	{"events", "rule", []string{"EventPattern", "ScheduleExpression", "State", "EventBusName"}, false},
	{"stepfunctions", "stateMachine", []string{"Definition", "RoleArn", "Type", "LoggingConfiguration"}, false},
	{"secretsmanager", "secret", []string{"SecretString", "VersionId", "RotationEnabled"}, true},
	{"ssm", "parameter", []string{"Type", "Value", "Version", "Tier", "DataType"}, false},
	{"kms", "key", []string{"KeyUsage", "KeySpec", "KeyState", "Origin"}, true},
	{"logs", "logGroup", []string{"RetentionInDays", "StoredBytes", "MetricFilterCount"}, false},
}

const account = "000000000000"

var regions = []string{"us-east-1", "eu-west-1"}

// Pickle opcodes (protocol 4) used by stateSource.
const (
	opProto         = 0x80
	opFrame         = 0x95
	opShortUnicode  = 0x8c
	opMemoize       = 0x94
	opStackGlobal   = 0x93
	opEmptyTuple    = ')'
	opNewObj        = 0x81
	opEmptyDict     = '}'
	opMark          = '('
	opSetItems      = 'u'
	opBinFloat      = 'G'
	opBinInt        = 'J'
	opShortBinBytes = 'C'
)

// stateSource produces a pickle-like service store: the store object's
// header once, then one resource record after another, each a dictionary of
// repeated keys, an id, an ARN, a creation time, attributes and a random
// payload.
type stateSource struct {
	g       *rng
	svc     service
	region  string
	ms      int64
	started bool
}

func (s *stateSource) next(b []byte) []byte {
	if !s.started {
		s.started = true
		return s.header(b)
	}
	return s.record(b)
}

func (s *stateSource) header(b []byte) []byte {
	b = append(b, opProto, 4, opFrame)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.g.between(1<<12, 1<<16)))
	b = appendPickleString(b, "localstack.services."+s.svc.name+".models")
	b = appendPickleString(b, "Store")
	b = append(b, opStackGlobal, opMemoize, opEmptyTuple, opNewObj, opMemoize, opEmptyDict, opMemoize, opMark)
	b = appendPickleString(b, "account_id")
	b = appendPickleString(b, account)
	b = appendPickleString(b, "region_name")
	return appendPickleString(b, s.region)
}

func (s *stateSource) record(b []byte) []byte {
	g := s.g
	s.ms += int64(g.IntN(60_000))
	var name [40]byte
	n := append(append(name[:0], s.svc.resource...), '-')
	n = g.appendHex(n, 8)
	b = appendPickleBytes(b, opShortUnicode, n)
	b = append(b, opEmptyDict, opMemoize, opMark)

	b = appendPickleString(b, "id")
	b = append(b, opShortUnicode, 36)
	b = append(g.appendUUID(b), opMemoize)

	b = appendPickleString(b, "arn")
	var arn [128]byte
	a := append(arn[:0], "arn:aws:"...)
	a = append(append(a, s.svc.name...), ':')
	a = append(append(a, s.region...), ':')
	a = append(append(a, account...), ':')
	a = append(append(a, s.svc.resource...), '/')
	b = appendPickleBytes(b, opShortUnicode, append(a, n...))

	b = appendPickleString(b, "created")
	b = append(b, opBinFloat)
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(float64(s.ms)/1000))

	b = appendPickleString(b, "status")
	b = appendPickleString(b, pick(g, statuses))
	b = s.attributes(b)

	b = appendPickleString(b, "version")
	b = append(b, opBinInt)
	b = binary.LittleEndian.AppendUint32(b, uint32(g.IntN(1000)))

	b = appendPickleString(b, "payload")
	k := g.between(16, 240)
	b = append(b, opShortBinBytes, byte(k))
	b = g.appendRandom(b, k)
	return append(b, opSetItems, opSetItems)
}

// attributes appends the resource's attribute dictionary: the service's
// attribute names with short values drawn from the vocabulary.
func (s *stateSource) attributes(b []byte) []byte {
	g := s.g
	b = appendPickleString(b, "attributes")
	b = append(b, opEmptyDict, opMemoize, opMark)
	var val [64]byte
	for _, attr := range s.svc.attrs {
		b = appendPickleString(b, attr)
		b = appendPickleBytes(b, opShortUnicode, appendWords(g, val[:0], g.between(1, 3)))
	}
	return append(b, opSetItems)
}

// appendPickleString appends s as a memoized SHORT_BINUNICODE (s must be
// shorter than 256 bytes).
func appendPickleString(b []byte, s string) []byte {
	b = append(b, opShortUnicode, byte(len(s)))
	return append(append(b, s...), opMemoize)
}

// appendPickleBytes appends p after the one-byte-length opcode op, memoized.
func appendPickleBytes(b []byte, op byte, p []byte) []byte {
	b = append(b, op, byte(len(p)))
	return append(append(b, p...), opMemoize)
}
