"""`palmbrush lab sweep`: being built (a placeholder so the lab's parser loads)."""


def add_parser(sub) -> None:
    sub.add_parser("sweep", help="(being built)")
