module github.com/infracast/auth

go 1.26
