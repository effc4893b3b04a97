# Client options: ~/.xe defaults, XE_EXTRA_ARGS, -pwf, remote failures.
printf 'minimal=true\n\nusername=root\n' >"$HOME/.xe"
xe network-list
xe network-list params=bridge
printf 'this line has no equals sign\nminimal=true\n' >"$HOME/.xe"
xe network-list params=bridge
rm -f "$HOME/.xe"
export XE_EXTRA_ARGS='params=bridge,minimal=true'
xe network-list
export XE_EXTRA_ARGS='params=name-label\,bridge'
xe network-list
unset XE_EXTRA_ARGS
printf 'root\n' >pw
xe -pwf pw network-list params=bridge
printf 'root\nsecret\n' >pw2
xe -pwf pw2 network-list params=bridge
xe -pwf no-such-file network-list params=bridge
xe nossl=maybe network-list
xe -s 127.0.0.1 network-list params=bridge --minimal
xe -s 127.0.0.2 -p 9 --nossl -u root -pw secret network-list
xe help -s 127.0.0.2 vm-destroy
