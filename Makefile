.PHONY: up test
up:
	./scripts/up.sh
test:
	./scripts/test.sh
