package domain

import "strings"

// RoutePermission returns the permission that the default policy of the contract
// requires for method on resource, the path below /api/v1/tenants/{tenant}/
// (for example "nodes/n-1" or "findings/f-9/accept-risk").
//
//	/nodes/**     GET nodes:read     | writes nodes:write
//	/findings/**  GET findings:read  | writes findings:write
//	/jobs/**      GET jobs:read      | writes jobs:write
//	/reports/**   reports:read for every method
//	anything else admin:*
func RoutePermission(method, resource string) Permission {
	first := strings.TrimPrefix(resource, "/")
	if i := strings.IndexByte(first, '/'); i >= 0 {
		first = first[:i]
	}
	read := method == "GET" || method == "HEAD"
	switch first {
	case "nodes":
		if read {
			return NodesRead
		}
		return NodesWrite
	case "findings":
		if read {
			return FindingsRead
		}
		return FindingsWrite
	case "jobs":
		if read {
			return JobsRead
		}
		return JobsWrite
	case "reports":
		return ReportsRead
	}
	return AdminAll
}
