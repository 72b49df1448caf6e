
$01890a5d-ac96-774b-bcce-b302099a8057§÷†˛†40.1.0"

ward4-db*
accountroot2{"password":"unknown","shell":"/bin/bash","uid":0}":
/etc/passwdaccounts"user root uid 0 shell /bin/bash*[
package_databasedpkg{"packages":6,"supported":true}" 
/var/lib/dpkg/statuspackages*É
packageadduser9{"architecture":"all","manager":"dpkg","version":"3.134"}"4
/var/lib/dpkg/statuspackages"Package: adduser*ì
package
base-filesC{"architecture":"amd64","manager":"dpkg","version":"12.4+deb12u11"}"7
/var/lib/dpkg/status)packages"Package: base-files*Ö
packagebashA{"architecture":"amd64","manager":"dpkg","version":"5.2.15-2+b8"}"1
/var/lib/dpkg/statusDpackages"Package: bash*ã
packagelibc6E{"architecture":"amd64","manager":"dpkg","version":"2.36-9+deb12u14"}"2
/var/lib/dpkg/statusfpackages"Package: libc6*†
packageopenssh-serverH{"architecture":"amd64","manager":"dpkg","version":"1:9.2p1-2+deb12u10"}";
/var/lib/dpkg/status}packages"Package: openssh-server*ë
packageopensslF{"architecture":"amd64","manager":"dpkg","version":"3.0.19-1~deb12u2"}"5
/var/lib/dpkg/statusØpackages"Package: openssl*¶
kernelrelease[{"build":"#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)","release":"6.1.0-28-amd64"}"6
/proc/sys/kernel/osreleasekernel"6.1.0-28-amd64*X
boot	boot_time{"unix_seconds":1764000000}"(

/proc/statkernel"btime 1764000000*ê
unitnftables.service2{"state":"enabled","wanted_by":["sysinit.target"]}"B
9/etc/systemd/system/sysinit.target.wants/nftables.serviceunits*å
unitssh.service5{"state":"enabled","wanted_by":["multi-user.target"]}"@
7/etc/systemd/system/multi-user.target.wants/ssh.serviceunits*¢
unitsystemd-timesyncd.service2{"state":"enabled","wanted_by":["sysinit.target"]}"K
B/etc/systemd/system/sysinit.target.wants/systemd-timesyncd.serviceunits*“
configfirewallã{"configured":true,"loaded_iptables_tables":[],"mechanisms":[{"enabled_at_boot":true,"name":"nftables","rules_file":"/etc/nftables.conf"}]}"S
9/etc/systemd/system/sysinit.target.wants/nftables.servicesystem_config"enabled"[
/etc/nftables.confsystem_config"4type filter hook input priority filter; policy drop;*≥
configautomatic_updates6{"enabled":true,"mechanism":"apt unattended-upgrades"}"^
#/etc/apt/apt.conf.d/20auto-upgradessystem_config"&APT::Periodic::Unattended-Upgrade "1";*¨
config	time_sync9{"enabled":true,"services":["systemd-timesyncd.service"]}"\
B/etc/systemd/system/sysinit.target.wants/systemd-timesyncd.servicesystem_config"enabled*9
configaudit({"config_present":false,"enabled":false}*ﬁ
listenertcp 0.0.0.0:22£{"address":"0.0.0.0","exposed":true,"inode":18211,"port":22,"processes":[{"comm":"sshd","exe":"/usr/sbin/sshd","pid":812}],"transport":"tcp","uid":0,"user":"root"}"õ
/proc/net/tcp	listeners"}0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18211 1 0000000000000000 100 0 0 10 0*π
listenertcp 127.0.0.1:3306{{"address":"127.0.0.1","exposed":false,"inode":19544,"port":3306,"processes":[],"transport":"tcp","uid":105,"user":"mysql"}"õ
/proc/net/tcp	listeners"}1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 19544 1 0000000000000000 100 0 0 10 0*à
listenertcp [::]:22û{"address":"::","exposed":true,"inode":18213,"port":22,"processes":[{"comm":"sshd","exe":"/usr/sbin/sshd","pid":812}],"transport":"tcp","uid":0,"user":"root"}"Õ
/proc/net/tcp6	listeners"≠0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18213 1 0000000000000000 100 0 0 10 0*⁄
listenertcp [::1]:25p{"address":"::1","exposed":false,"inode":18300,"port":25,"processes":[],"transport":"tcp","uid":0,"user":"root"}"Õ
/proc/net/tcp6	listeners"≠1: 00000000000000000000000001000000:0019 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18300 1 0000000000000000 100 0 0 10 0*§
listenerudp 0.0.0.0:68s{"address":"0.0.0.0","exposed":true,"inode":17000,"port":68,"processes":[],"transport":"udp","uid":0,"user":"root"}"í
/proc/net/udp	listeners"t120: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 17000 2 0000000000000000 0*–
volume/dev/mapper/vg-root¨{"data_volume":true,"fs_type":"ext4","method":"luks2","mount_points":["/","/var/lib/docker"],"reason":"dm-1 is built on dm-0: dm-0 is dm-crypt (luks2)","state":"encrypted"}":
/proc/self/mountsvolumes"/dev/mapper/vg-root / ext4"d
/sys/block/dm-1/dm/uuidvolumes"@LVM-Qm0yHcPZ2xk3Y7Qm0yHcPZ2xk3Y7Qm0yHcPZ2xk3Y7Qm0yHcPZ2xk3Y7abcd"`
/sys/block/dm-0/dm/uuidvolumes"<CRYPT-LUKS2-8a1f3b2c6d7e4f5a9b0c1d2e3f4a5b6c-nvme0n1p3_crypt*¿
volume/dev/nvme0n1p1ú{"data_volume":false,"fs_type":"vfat","method":"none","mount_points":["/boot/efi"],"reason":"nvme0n1p1 has no crypt layer beneath it","state":"unencrypted"}"=
/proc/self/mountsvolumes"/dev/nvme0n1p1 /boot/efi vfat"H
/sys/class/block/nvme0n1p1volumes"!nvme0n1p1: no device-mapper layer*∏
volume/dev/nvme0n1p2ò{"data_volume":false,"fs_type":"ext4","method":"none","mount_points":["/boot"],"reason":"nvme0n1p2 has no crypt layer beneath it","state":"unencrypted"}"9
/proc/self/mountsvolumes"/dev/nvme0n1p2 /boot ext4"H
/sys/class/block/nvme0n1p2volumes"!nvme0n1p2: no device-mapper layer*ò
swap	/dev/dm-2a{"method":"luks2","reason":"dm-2 is built on dm-0: dm-0 is dm-crypt (luks2)","state":"encrypted"}"Z
/proc/swapsvolumes"@/dev/dm-2                               partition	1000444		0		-2"d
/sys/block/dm-2/dm/uuidvolumes"@LVM-Qm0yHcPZ2xk3Y7Qm0yHcPZ2xk3Y7Qm0yHcPZ2xk3Y7Qm0yHcPZ2xk3Y7swap"`
/sys/block/dm-0/dm/uuidvolumes"<CRYPT-LUKS2-8a1f3b2c6d7e4f5a9b0c1d2e3f4a5b6c-nvme0n1p3_crypt2•
mfaunknownO/etc/ssh/sshd_config is missing or unreadable: SSH login paths cannot be judged"D
/etc/pam.d/loginmfa"+console login: no PAM stack for login found2é
transit_encryptionunknownÄexposed service(s) not identified: tcp 0.0.0.0:22 (not probed), tcp [::]:22 (not probed); 1 exposed UDP listener(s) not assessed"õ
/proc/net/tcp	listeners"}0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18211 1 0000000000000000 100 0 0 10 0"Õ
/proc/net/tcp6	listeners"≠0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18213 1 0000000000000000 100 0 0 10 02í
rest_encryption	encryptedLevery data volume and swap area is encrypted: /dev/mapper/vg-root, /dev/dm-2":
/proc/self/mountsvolumes"/dev/mapper/vg-root / ext4"d
/sys/block/dm-1/dm/uuidvolumes"@LVM-Qm0yHcPZ2xk3Y7Qm0yHcPZ2xk3Y7Qm0yHcPZ2xk3Y7Qm0yHcPZ2xk3Y7abcd"`
/sys/block/dm-0/dm/uuidvolumes"<CRYPT-LUKS2-8a1f3b2c6d7e4f5a9b0c1d2e3f4a5b6c-nvme0n1p3_crypt"Z
/proc/swapsvolumes"@/dev/dm-2                               partition	1000444		0		-2"d
/sys/block/dm-2/dm/uuidvolumes"@LVM-Qm0yHcPZ2xk3Y7Qm0yHcPZ2xk3Y7Qm0yHcPZ2xk3Y7Qm0yHcPZ2xk3Y7swap"`
/sys/block/dm-0/dm/uuidvolumes"<CRYPT-LUKS2-8a1f3b2c6d7e4f5a9b0c1d2e3f4a5b6c-nvme0n1p3_crypt