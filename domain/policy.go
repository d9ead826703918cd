package domain

// RoutePermission returns the permission that the default policy of the contract
// requires for method on resource, the path below /api/v1/tenants/{tenant}/
// (for example "nodes/n-1" or "findings/f-9/accept-risk"): DefaultPolicy().Permission.
//
//	/nodes/**     GET nodes:read     | writes nodes:write
//	/findings/**  GET findings:read  | writes findings:write
//	/jobs/**      GET jobs:read      | writes jobs:write
//	/reports/**   reports:read for every method
//	anything else admin:*
func RoutePermission(method, resource string) Permission {
	return defaultPolicy.Permission(method, resource)
}
