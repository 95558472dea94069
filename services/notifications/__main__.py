from services.notifications.app import create_app
from services.notifications.settings import NotificationsSettings
from shared.bootstrap import serve

settings = NotificationsSettings()
serve(create_app(settings), settings)
