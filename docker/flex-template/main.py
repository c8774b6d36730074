"""FLEX_TEMPLATE_PYTHON_PY_FILE of the image: Dataflow's template launcher runs this file with
the template's parameters; ``news_ingest.pipeline.flex`` turns them into ``news-ingest run``."""

import sys

from news_ingest.pipeline.flex import main

if __name__ == "__main__":
    sys.exit(main())
