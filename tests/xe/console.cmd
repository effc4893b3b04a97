# xe console: the text console of a running VM (stdin is /dev/null here,
# so the command ends once the console has been quiet), and the refusals.
A=$(xe vm-install template="Other install media" new-name-label=alpha)
xe console vm=alpha
xe vm-start vm=alpha
xe console vm=alpha
xe console uuid=$A
xe console vm=nonesuch
xe vm-shutdown vm=alpha --force
xe console vm=alpha
