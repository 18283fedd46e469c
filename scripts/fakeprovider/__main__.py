"""`python -m fakeprovider` (with scripts/ on sys.path); prefer scripts/fake_provider.py."""

from .cli import main

raise SystemExit(main())
