"""``python -m trioweb serve module:app`` -- the same as ``trioweb serve``."""

from .cli import main

if __name__ == "__main__":
    main()
