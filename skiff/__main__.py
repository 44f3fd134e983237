from skiff.cli.main import run

run()
