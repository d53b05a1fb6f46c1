"""`nb2prod diff` and `convert --compatible-with`: what a new version changes against an old one."""
