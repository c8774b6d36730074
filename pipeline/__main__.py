import sys

from news_ingest.pipeline.cli import main

sys.exit(main())
