package commands

import "strings"

// commonPasswords are passwords of at least the minimum length that appear at
// the top of every published breach corpus (NIST SP 800-63B 5.1.1.2: refuse
// commonly used, expected or compromised values). Compared case-insensitively.
var commonPasswords = func() map[string]bool {
	list := `password password1 password12 password123 password1234 passw0rd p@ssw0rd p@ssword
12345678 123456789 1234567890 0987654321 987654321 11111111 00000000 88888888 12341234
123123123 qwertyuiop qwerty123 qwerty12 1qaz2wsx qazwsxedc 1q2w3e4r 1q2w3e4r5t zaq12wsx
asdfghjkl zxcvbnm123 iloveyou iloveyou1 sunshine princess football baseball superman
starwars trustno1 letmein1 welcome1 welcome123 changeme changeme1 administrator admin123
admin1234 adminadmin master123 computer whatever michelle jennifer corvette mercedes
liverpool chelsea1 arsenal1 football1 baseball1 basketball charlie1 shadow12 monkey12
dragon12 freedom1 abcd1234 abc12345 aa123456 a1234567 qwer1234 1234qwer iloveu123
sunshine1 princess1 internet security letmein! password! welcome! summer2024 winter2024
spring2024 autumn2024 summer2025 winter2025 summer2026 winter2026 infracast infracast1
infracast123 secret123 secret1234 default1 guest123 test1234 testtest 12qwaszx`
	m := map[string]bool{}
	for _, p := range strings.Fields(list) {
		m[p] = true
	}
	return m
}()

// isCommonPassword reports whether password is on the blocklist.
func isCommonPassword(password string) bool {
	return commonPasswords[strings.ToLower(password)]
}
