package remote

// Names of the backend.Backend methods, as Faulty rules and retry
// notifications spell them.
const (
	MethodGet          = "Get"
	MethodGetRange     = "GetRange"
	MethodPut          = "Put"
	MethodStat         = "Stat"
	MethodList         = "List"
	MethodDelete       = "Delete"
	MethodGetVersioned = "GetVersioned"
	MethodPutIf        = "PutIf"
)

// methods lists every method name, to check rules against typos.
var methods = []string{
	MethodGet, MethodGetRange, MethodPut, MethodStat,
	MethodList, MethodDelete, MethodGetVersioned, MethodPutIf,
}
