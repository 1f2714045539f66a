"""`python -m simulacra ...`: the same CLI as the `simulacra` console script."""

from simulacra.cli.app import main

if __name__ == "__main__":
    main()
