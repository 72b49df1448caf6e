
$01890a5d-ac96-774b-bcce-b302099a8057€Ğê¶·30.1.0"¦
journal-db-01Debian GNU/Linux12"6.1.0-18-amd64*x86_642
Intel Xeon8@€€€€ HÀÉÊPÀâZ 
	/dev/vda1/ext4 €€€€P(€€€€b'
eth052:54:00:12:34:5610.20.0.5/24*{
packageopenssh-server({"version":"1:9.2p1-2","manager":"dpkg"}"6
/var/lib/dpkg/status*"Status: install ok installed21
mfaabsent"no second factor in PAM sshd stack:U
192.168.50.7camera	Hikvision"DS-2CD2143G2*V5.7.32	E12345678:c0:56:e3:00:00:01B$01890a5d-ac96-774b-bcce-b302099a8058H