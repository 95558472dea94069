from services.routing.app import create_app
from services.routing.settings import RoutingSettings
from shared.bootstrap import serve

settings = RoutingSettings()
serve(create_app(settings), settings)
