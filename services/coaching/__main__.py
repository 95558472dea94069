from services.coaching.app import create_app
from services.coaching.settings import CoachingSettings
from shared.bootstrap import serve

settings = CoachingSettings()
serve(create_app(settings), settings)
