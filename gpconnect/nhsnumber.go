package gpconnect

// ValidNHSNumber reports whether s is ten digits whose last is the
// Modulus 11 check digit of the first nine (weights 10 down to 2; a check
// of 10 makes the number invalid, 11 means 0). The practices and PDS refuse
// any other number with their own error codes.
func ValidNHSNumber(s string) bool {
	if len(s) != 10 {
		return false
	}
	sum := 0
	for i := 0; i < 10; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		if i < 9 {
			sum += int(s[i]-'0') * (10 - i)
		}
	}
	check := 11 - sum%11
	if check == 11 {
		check = 0
	}
	return check != 10 && check == int(s[9]-'0')
}
